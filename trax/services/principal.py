"""Who is acting: the credential every use case takes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from trax.domain.errors import Forbidden
from trax.domain.keys import RateLimitOverride
from trax.domain.scopes import ALL_SCOPES


@dataclass(frozen=True, slots=True)
class Principal:
    account_id: str
    scopes: frozenset[str]
    key_id: str | None = None
    """The API key acting, or ``None`` for the operator (CLI, notebook)."""
    rate_limit: RateLimitOverride | None = None
    kind: str = "api_key"
    ends_at: datetime | None = None
    """When the credential stops working (expiry or scheduled revocation), if ever."""
    superseded: bool = False
    """The key has been rotated out or its revocation is scheduled: it works until ``ends_at``, mints nothing."""

    @classmethod
    def operator(cls, account_id: str) -> Principal:
        """Full rights over one account: what a person at the CLI or in a notebook holds."""
        return cls(account_id=account_id, scopes=ALL_SCOPES, kind="operator")

    @property
    def is_operator(self) -> bool:
        return self.kind == "operator"

    @property
    def rate_limit_key(self) -> str:
        return f"key:{self.key_id}" if self.key_id else f"{self.kind}:{self.account_id}"

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"This credential lacks the '{scope}' scope.", required_scope=scope)
