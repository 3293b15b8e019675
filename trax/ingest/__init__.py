"""The media ingest plane: stream paths, media tokens, the path hub and protocol listeners."""
