"""The ``api_key`` link of the authentication chain: ``sk_live_...`` secrets."""

from __future__ import annotations

from typing import Any

from trax.domain.keys import SECRET_PREFIX
from trax.interfaces import Authenticator
from trax.plugin_api import Backend, hookimpl
from trax.services.principal import Principal


class ApiKeyAuthenticator:
    name = "api_key"

    def __init__(self, runtime: Any) -> None:
        self._runtime = runtime

    async def authenticate(self, credential: str) -> Principal | None:
        if not credential.startswith(SECRET_PREFIX):
            return None  # not ours: an OAuth token, say, for a later link
        principal: Principal = await self._runtime.services.keys.authenticate(credential)
        return principal


def _factory(options: Any, runtime: Any) -> Authenticator:
    return ApiKeyAuthenticator(runtime)


@hookimpl
def trax_register_authenticators() -> list[Backend[Authenticator]]:
    return [Backend("api_key", _factory, description="API keys (sk_live_...).", order=10)]
