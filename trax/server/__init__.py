"""The /v1 HTTP API: a Litestar projection of the services."""
