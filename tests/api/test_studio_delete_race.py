"""Deleting a studio while its children are being created never leaves an orphan, and the loser is a 4xx.

The API runs in-process over the real app; with SQLite the writes go through
the storage's writer thread, so a delete's listing of children and a create's
commit genuinely interleave (the delete lists, the create commits, then the
delete's batch runs). Memory runs the same steps in one loop.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Api
from tests.api.test_errors import assert_envelope
from trax.domain.chat import ChatMessage
from trax.domain.destinations import Destination
from trax.domain.keys import RateLimitOverride
from trax.domain.scopes import SCOPES
from trax.domain.sources import Source

pytestmark = pytest.mark.anyio

ROUNDS = 25
CHILD_POSTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("sources", {"name": "cam", "kind": "srt"}),
    ("destinations", {"name": "out", "platform": "custom_rtmp", "rtmpUrl": "rtmp://127.0.0.1/live", "streamKey": "k"}),
    ("chat/messages", {"text": "hi"}),
    ("sources", {"name": "mic", "kind": "rtmp"}),
)


def _storage(kind: str, tmp_path: Path) -> dict[str, Any]:
    if kind == "sqlite":
        return {"backend": "sqlite", "options": {"path": str(tmp_path / "race.db"), "synchronous": "normal"}}
    return {"backend": "memory"}


async def _orphans(api: Api, account_id: str, studio_id: str) -> list[str]:
    left: list[str] = []
    for kind in (Source, Destination, ChatMessage):
        left += [c.id for c in await api.runtime.storage.list(kind, account_id, parent_id=studio_id, limit=200)]
    return left


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_delete_racing_child_creation_leaves_no_orphan(
    make_api: Callable[..., Any], tmp_path: Path, backend: str
) -> None:
    async with make_api(storage=_storage(backend, tmp_path)) as api:
        tenant = await api.tenant("racer")
        unlimited = RateLimitOverride(capacity=100_000, refill_per_second=100_000)
        h = tenant.auth(await api.key(tenant, SCOPES, rate_limit=unlimited))
        seen: Counter[str] = Counter()
        for n in range(ROUNDS):
            r = await api.client.post("/v1/studios", headers=h, json={"name": f"s{n}"})
            assert r.status_code == 201, r.text
            studio_id = r.json()["id"]
            base = f"/v1/studios/{studio_id}"
            # the delete goes first, second or last among the creates, so both orders are raced
            posts = [api.client.post(f"{base}/{path}", headers=h, json=body) for path, body in CHILD_POSTS]
            calls = [*posts]
            calls.insert(n % (len(posts) + 1), api.client.delete(base, headers=h))
            async with asyncio.timeout(60):
                answers = await asyncio.gather(*calls)
            for resp in answers:
                seen[f"{resp.request.method} {resp.status_code}"] += 1
                if resp.request.method == "DELETE":
                    if resp.status_code != 204:
                        assert_envelope(resp, 409, "conflict")
                elif resp.status_code != 201:
                    assert_envelope(resp, 404, "not_found")
            gone = (await api.client.get(base, headers=h)).status_code == 404
            deleted = any(a.request.method == "DELETE" and a.status_code == 204 for a in answers)
            assert gone == deleted
            if gone:
                assert await _orphans(api, tenant.account_id, studio_id) == []
            else:
                # the client's retry lists the children that won the race and deletes them too
                retry = await api.client.delete(base, headers=h)
                assert retry.status_code == 204, retry.text
                assert await _orphans(api, tenant.account_id, studio_id) == []
        # every request got one of the answers above; which ones depends on scheduling
        assert sum(seen.values()) == ROUNDS * (len(CHILD_POSTS) + 1)
        print(f"{backend}: {dict(seen)}")
