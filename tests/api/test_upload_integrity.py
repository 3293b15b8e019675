"""Concurrent PUTs to one signed upload URL, and partial files a crash leaves behind.

The stored bytes must always be the ones whose size and sha256 the asset records: a losing or failing
attempt may only remove its own data. ``.part`` files a killed process left are swept at start-up and
periodically, never one a live upload or recording is still writing.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.api.conftest import Api
from trax.domain.errors import Conflict, InvalidRequest
from trax.domain.media import AssetStatus, MediaAsset
from trax.services.media import MediaService

pytestmark = pytest.mark.anyio


class GatedBody:
    """A request body sent in two halves: the second half waits for ``release``.

    ``started`` is set once the server has taken the first half, i.e. the upload passed its checks and
    is streaming bytes into the blob store.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        half = len(self.data) // 2
        yield self.data[:half]
        self.started.set()
        await self.release.wait()
        yield self.data[half:]


def _local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def _initiate(api: Api, size: int, sha: str | None = None) -> tuple[dict[str, Any], dict[str, str], str]:
    t = await api.tenant("acme")
    h = t.auth(await api.key(t, ["media:write", "media:read"]))
    body: dict[str, Any] = {"name": "clip.mp4", "contentType": "video/mp4", "sizeBytes": size}
    if sha:
        body["sha256"] = sha
    r = await api.client.post("/v1/media/uploads", headers=h, json=body)
    assert r.status_code == 201, r.text
    return r.json(), h, t.account_id


async def _stored(api: Api, account_id: str, asset_id: str) -> tuple[MediaAsset, bytes]:
    asset = await api.runtime.storage.get(MediaAsset, account_id, asset_id)
    assert asset is not None and asset.blob_key
    data = b"".join([c async for c in api.runtime.blobs.open_read(asset.blob_key)])
    return asset, data


@pytest.fixture
async def fs_api(make_api: Any, tmp_path: Path) -> AsyncIterator[Api]:
    async with make_api(blobs={"backend": "filesystem", "options": {"root": str(tmp_path / "blobs")}}) as api:
        yield api


async def _second_put_racing_the_first(api: Api, url: str, first: bytes, second: bytes) -> tuple[int, int]:
    """Start a PUT of ``first``; while it streams, start a PUT of ``second``; let the first finish, then the second.

    The second one may be refused before it sends a byte, or stream and fail later; either way it ends
    after the first one completed.
    """
    a = GatedBody(first)
    put_a = asyncio.create_task(api.client.put(url, content=a))
    await asyncio.wait_for(a.started.wait(), 10)
    b = GatedBody(second)
    put_b = asyncio.create_task(api.client.put(url, content=b))
    b_streaming = asyncio.create_task(b.started.wait())
    await asyncio.wait({put_b, b_streaming}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    b_streaming.cancel()
    a.release.set()
    r1 = await asyncio.wait_for(put_a, 10)
    b.release.set()
    r2 = await asyncio.wait_for(put_b, 10)
    return r1.status_code, r2.status_code


async def test_a_wrong_size_second_put_leaves_the_first_ones_bytes(fs_api: Api) -> None:
    data = os.urandom(64 * 1024)
    up, _, account_id = await _initiate(fs_api, len(data), hashlib.sha256(data).hexdigest())
    first, second = await _second_put_racing_the_first(fs_api, _local(up["url"]), data, data[:-100])
    assert first == 200
    assert second in (400, 409)
    asset, stored = await _stored(fs_api, account_id, up["assetId"])
    assert asset.status is AssetStatus.READY
    assert stored == data


async def test_a_same_size_second_put_with_other_bytes_gets_409_and_changes_nothing(fs_api: Api) -> None:
    data = os.urandom(64 * 1024)
    other = os.urandom(len(data))
    up, _, account_id = await _initiate(fs_api, len(data))  # no sha256 announced: either body is acceptable
    first, second = await _second_put_racing_the_first(fs_api, _local(up["url"]), data, other)
    assert (first, second) == (200, 409)
    asset, stored = await _stored(fs_api, account_id, up["assetId"])
    assert asset.status is AssetStatus.READY
    assert asset.size_bytes == len(stored) == len(data)
    assert asset.sha256 == hashlib.sha256(stored).hexdigest() == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("second", ["wrong_size", "other_bytes"])
async def test_two_processes_racing_on_one_upload_keep_the_first_ones_bytes(fs_api: Api, second: str) -> None:
    """Two servers sharing storage and blobs (each with its own in-process guard) receive one upload at once."""
    data = os.urandom(64 * 1024)
    other = data[:-100] if second == "wrong_size" else os.urandom(len(data))
    up, _, account_id = await _initiate(fs_api, len(data))
    token = parse_qs(urlsplit(up["url"]).query)["token"][0]
    here, there = fs_api.runtime.services.media, MediaService(fs_api.runtime.deps)
    a, b = GatedBody(data), GatedBody(other)
    put_a = asyncio.create_task(here.receive_upload(up["id"], token, a.__aiter__()))
    await asyncio.wait_for(a.started.wait(), 10)
    put_b = asyncio.create_task(there.receive_upload(up["id"], token, b.__aiter__()))
    await asyncio.wait_for(b.started.wait(), 10)
    a.release.set()
    assert (await asyncio.wait_for(put_a, 10)).status is AssetStatus.READY
    b.release.set()
    with pytest.raises(InvalidRequest if second == "wrong_size" else Conflict):
        await asyncio.wait_for(put_b, 10)
    asset, stored = await _stored(fs_api, account_id, up["assetId"])
    assert stored == data
    assert asset.size_bytes == len(data) and asset.sha256 == hashlib.sha256(data).hexdigest()


async def test_a_failed_attempt_leaves_no_partial_or_stray_file(fs_api: Api, tmp_path: Path) -> None:
    data = os.urandom(4096)
    up, _, account_id = await _initiate(fs_api, len(data), hashlib.sha256(data).hexdigest())
    assert (await fs_api.client.put(_local(up["url"]), content=data[:-1])).status_code == 400
    assert (await fs_api.client.put(_local(up["url"]), content=os.urandom(len(data)))).status_code == 400
    assert (await fs_api.client.put(_local(up["url"]), content=data)).status_code == 200
    asset, stored = await _stored(fs_api, account_id, up["assetId"])
    assert stored == data
    # only the promoted attempt's file is left
    files = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert [str(p.relative_to(tmp_path / "blobs")) for p in files] == [asset.blob_key]


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


async def test_stale_partial_files_are_swept_at_start_up(make_api: Any, tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    folder = root / "acct_1"
    folder.mkdir(parents=True)
    stale = folder / ".asset_1_ab12.0123456789ab.part"  # what a kill -9 mid-upload leaves
    stale.write_bytes(b"half an upload")
    _age(stale, 7200)
    fresh = folder / ".asset_2_cd34.0123456789ab.part"  # another process may still be writing it
    fresh.write_bytes(b"still arriving")
    kept = folder / "asset_3_ef56"
    kept.write_bytes(b"a stored blob, however old")
    _age(kept, 10 * 86400)
    blobs = {"backend": "filesystem", "options": {"root": str(root)}}
    async with make_api(blobs=blobs, media={"stale_part_seconds": 3600}):
        assert not stale.exists()
        assert fresh.exists() and kept.exists()
    assert kept.read_bytes() == b"a stored blob, however old"


async def test_stale_partial_files_are_swept_periodically(make_api: Any, tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    blobs = {"backend": "filesystem", "options": {"root": str(root)}}
    media = {"stale_part_seconds": 60, "part_sweep_interval_seconds": 0.1}
    async with make_api(blobs=blobs, media=media):
        stale = root / "acct_1" / ".asset_1_ab12.0123456789ab.part"
        stale.parent.mkdir(parents=True, exist_ok=True)
        stale.write_bytes(b"left by another process")
        _age(stale, 600)
        for _ in range(100):
            if not stale.exists():
                break
            await asyncio.sleep(0.05)
        assert not stale.exists()


async def test_the_sweep_never_removes_a_part_still_being_written(tmp_path: Path) -> None:
    """A recording being moved into the store (or an upload) whose file looks old is still in flight."""
    from trax.plugins.blob_stores import FilesystemBlobStore

    store = FilesystemBlobStore(tmp_path / "blobs")
    await store.open()
    gate = GatedBody(b"x" * 1000)
    put = asyncio.create_task(store.put("acct_1/asset_1", gate.__aiter__(), max_bytes=1000))
    await asyncio.wait_for(gate.started.wait(), 10)
    [part] = list((tmp_path / "blobs").rglob("*.part"))
    _age(part, 10 * 86400)
    assert await store.sweep_partials(older_than_seconds=60) == 0
    assert part.exists()
    gate.release.set()
    stored = await asyncio.wait_for(put, 10)
    assert stored.size == 1000
    assert [c async for c in store.open_read("acct_1/asset_1")] == [b"x" * 1000]


@pytest.mark.slow
async def test_kill_9_mid_upload_leaves_a_part_the_next_start_removes_and_the_url_still_works(tmp_path: Path) -> None:
    from tests.support.server import ServerProcess, dev_config
    from trax.domain.scopes import SCOPES

    config = dev_config(tmp_path, media={"stale_part_seconds": 60})
    data = os.urandom(1024 * 1024)
    server = ServerProcess(config, tmp_path)
    with server:
        server.cli_json("accounts", "create", "acme")
        scopes = [a for s in SCOPES for a in ("--scope", s)]
        key = server.cli_json("keys", "create", "--account", "acme", "--name", "up", *scopes)["secret"]
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            h = {"Authorization": f"Bearer {key}"}
            body = {"name": "clip.mp4", "contentType": "video/mp4", "sizeBytes": len(data)}
            up = (await client.post("/v1/media/uploads", headers=h, json=body)).json()
            gate = GatedBody(data)
            put = asyncio.create_task(client.put(_local(up["url"]), content=gate))
            parts: list[Path] = []
            for _ in range(200):
                parts = [p for p in (tmp_path / "blobs").rglob("*.part") if p.stat().st_size > 0]
                if parts:
                    break
                await asyncio.sleep(0.05)
            assert parts, "the upload never reached the blob store"
            server.kill9()
            gate.release.set()  # the client sends the rest into a dead connection
            with pytest.raises(httpx.TransportError):
                await asyncio.wait_for(put, 10)
        [part] = parts
        assert part.exists()  # nobody is left to remove it
        _age(part, 7200)  # as if the process had died two hours ago
    with ServerProcess(config, tmp_path) as server:
        assert not part.exists()
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            r = await client.put(_local(up["url"]), content=data)  # the client may simply try again
            assert r.status_code == 200, r.text
            assert r.json()["sha256"] == hashlib.sha256(data).hexdigest()
