from __future__ import annotations

from dataclasses import dataclass

from trax.domain.base import Entity


@dataclass(kw_only=True, slots=True)
class Account(Entity):
    """A tenant. Stored under the pseudo-account ``_accounts`` so accounts list like anything else."""

    KIND = "account"
    PREFIX = "acct"

    name: str

    def unique_keys(self) -> dict[str, str]:
        return {"account.name": self.name}
