"""One controller per /v1 resource; each is a thin projection of a service."""
