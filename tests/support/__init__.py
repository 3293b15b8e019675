"""Helpers shared by the test suite: free ports, required tools, real server processes."""
