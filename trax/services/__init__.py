"""The use cases. Each takes the acting :class:`Principal`; tenancy is enforced here."""

from __future__ import annotations

from trax.services.accounts import AccountService
from trax.services.chat import ChatService
from trax.services.connections import ConnectionService
from trax.services.deps import MediaPolicy, ServiceDeps
from trax.services.destinations import DestinationService
from trax.services.keys import KeyService
from trax.services.media import MediaService
from trax.services.principal import Principal
from trax.services.sources import SourceService
from trax.services.studios import StudioService


class Services:
    """Every use case over one set of dependencies."""

    def __init__(self, deps: ServiceDeps) -> None:
        self.deps = deps
        self.accounts = AccountService(deps)
        self.keys = KeyService(deps)
        self.studios = StudioService(deps)
        self.sources = SourceService(deps)
        self.destinations = DestinationService(deps)
        self.connections = ConnectionService(deps)
        self.chat = ChatService(deps)
        self.media = MediaService(deps)


__all__ = ["MediaPolicy", "Principal", "ServiceDeps", "Services"]
