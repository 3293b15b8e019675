"""Tenants. Operator-only: accounts are made from the CLI or a notebook, not /v1."""

from __future__ import annotations

from trax.domain.accounts import Account
from trax.domain.errors import Conflict, NotFound
from trax.domain.ids import looks_like_id
from trax.domain.pages import Page
from trax.interfaces import Insert
from trax.services import validation
from trax.services.deps import ServiceDeps
from trax.services.paging import keyset_page

_ACCOUNTS = "_accounts"
"""Accounts are listed as if owned by this pseudo-account (they own themselves)."""


class AccountService:
    def __init__(self, deps: ServiceDeps) -> None:
        self._d = deps

    async def create(self, name: str) -> Account:
        name = validation.text(name, "name", max_len=100)
        if await self._d.storage.find_unique(Account, "account.name", name):
            raise Conflict(f"An account named {name!r} already exists.", param="name")
        now = self._d.now()
        acct = Account(id=self._d.new_id("acct"), account_id=_ACCOUNTS, name=name, created_at=now, updated_at=now)

        await self._d.storage.apply([Insert(acct)])
        return acct

    async def list(self, *, limit: int | None = None, cursor: str | None = None) -> Page[Account]:
        return await keyset_page(self._d, Account, _ACCOUNTS, limit=limit, cursor=cursor)

    async def get(self, id_or_name: str) -> Account:
        """An account by id or by name."""
        acct: Account | None
        if looks_like_id(id_or_name, "acct"):
            acct = await self._d.storage.get(Account, _ACCOUNTS, id_or_name)
        else:
            acct = await self._d.storage.find_unique(Account, "account.name", id_or_name)
        if acct is None:
            raise NotFound(f"No account {id_or_name!r}.")
        return acct
