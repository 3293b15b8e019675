"""Run a deployment: the /v1 app under uvicorn, with the runtime's ingest listeners."""

from __future__ import annotations

import logging

import uvicorn

from trax.http_door import uvicorn_config
from trax.runtime import Runtime
from trax.settings import Settings


def serve(settings: Settings) -> int:
    from trax.server.app import create_app

    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runtime = Runtime(settings)
    app = create_app(runtime, start_transports=True)
    config = uvicorn_config(
        app,
        "api",
        settings.server.http,
        host=settings.server.host,
        port=settings.server.port,
        log_level=settings.log_level.lower(),
        access_log=settings.server.access_log,
        lifespan="on",
        server_header=False,
        proxy_headers=False,
        ssl_certfile=str(settings.server.certfile) if settings.server.certfile else None,
        ssl_keyfile=str(settings.server.keyfile) if settings.server.keyfile else None,
    )
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1
