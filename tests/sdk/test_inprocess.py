"""`trax.connect`: the deployment in this process, driven plainly and with `await`."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import trax
from trax.client import Call, models
from trax.domain import errors
from trax.notebook import Platform


def memory_config() -> dict[str, Any]:
    return {
        "storage": {"backend": "memory"},
        "blobs": {"backend": "memory"},
        "security": {"secret_key": "sdk-test-" + "x" * 40},
        "public_api": {"write_enabled": True},
        "platforms": {"loopback": {}},
    }


@pytest.fixture
def p() -> Iterator[Platform]:
    platform = trax.connect(memory_config(), account="acme")
    try:
        yield platform
    finally:
        platform.close()


def test_plain_calls_return_results_and_navigate(p: Platform) -> None:
    studio = p.studios.create(name="Main")
    assert isinstance(studio, Call) and isinstance(studio.result(), models.Studio)
    assert studio.name == "Main" and studio.status == "offline"
    src = studio.sources.create(kind="rtmp")
    assert src.kind == "rtmp" and src.path.startswith("inputs/rtmp-")
    assert studio.go_live().status == "live"
    status = studio.stream_status()
    assert [s.id for s in status.sources] == [src.id]
    assert studio.chat.send("hi").text == "hi"
    assert [m.text for m in studio.chat.list()] == ["hi"]
    key = p.keys.create(name="ci", scopes=["studios:read"], rate_limit={"capacity": 5, "refill_per_second": 2})
    assert key.secret and key.secret.startswith(key.prefix)
    assert key.rate_limit == {"capacity": 5, "refillPerSecond": 2.0}
    assert [k.id for k in p.keys.list()] == [key.id]


def test_errors_raise_at_the_call_site(p: Platform) -> None:
    with pytest.raises(errors.NotFound):
        p.studios.get("studio_01HZZZZZZZZZZZZZZZZZZZZZZZ")
    with pytest.raises(errors.InvalidRequest) as bad:
        p.studios.create(name="")
    assert bad.value.param == "name"
    with pytest.raises(errors.InvalidRequest):
        p.studios.list(limit=0).first()
    studio = p.studios.create(name="busy")
    studio.go_live()
    with pytest.raises(errors.Conflict):
        studio.delete()


def test_list_walks_every_page(p: Platform) -> None:
    made = [p.studios.create(name=f"s{i}").id for i in range(12)]
    pager = p.studios.list(limit=5)
    assert [s.id for s in pager] == made
    assert [s.id for s in pager.first(3)] == made[:3]


def test_account_is_created_once_and_reused(tmp_path: Path) -> None:
    config = {**memory_config(), "storage": {"backend": "sqlite", "options": {"path": str(tmp_path / "t.db")}}}
    with trax.connect(config, account="acme") as first:
        first_id = first.account.id
        first.studios.create(name="kept")
    with trax.connect(config, account="acme") as again:
        assert again.account.id == first_id
        assert [s.name for s in again.studios.list()] == ["kept"]


def test_media_upload_in_process(p: Platform) -> None:
    seen: list[int] = []

    class Bar:
        def update(self, n: int) -> None:
            seen.append(n)

        def close(self) -> None:
            seen.append(-1)

    data = b"\x00\x01" * 1_500_000
    asset = p.media.upload(data, name="clip.mp4", progress=lambda total, name: Bar())
    assert asset.status == "ready" and asset.size_bytes == len(data) and asset.content_type == "video/mp4"
    assert sum(n for n in seen if n > 0) == len(data) and seen[-1] == -1
    assert p.media.get(asset.id).status == "ready"


def test_tokens_mint_for_a_source(p: Platform) -> None:
    src = p.studios.create(name="t").sources.create(kind="whip")
    creds = p.tokens.mint(source=src, action="publish")  # as docs/sdk.md writes it: the create's result as is
    assert creds.path == src.path and creds.action == "publish" and creds.token
    claims = p.run(
        p.runtime.media_tokens.verify(creds.token, path=src.path, action="publish", audiences=["trax-ingest"])
    )
    assert claims


@pytest.mark.anyio
async def test_awaited_inside_a_running_loop(p: Platform) -> None:
    # an event loop runs in this thread, as in Jupyter: calls must neither block it nor call asyncio.run
    studio = await p.studios.create(name="async")
    assert isinstance(studio, models.Studio)
    src = await studio.sources.create(kind="srt")
    assert [s.id async for s in studio.sources.list()] == [src.id]
    assert [s.id for s in await studio.sources.list()] == [src.id]
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.gather(*(p.studios.create(name=f"c{i}") for i in range(5)))
    task.cancel()
    assert ticks > 0  # the loop kept running while the calls were in flight
    with pytest.raises(errors.NotFound):
        await p.studios.get("studio_01HZZZZZZZZZZZZZZZZZZZZZZZ")


@pytest.mark.anyio
async def test_wait_true_makes_calls_finish_even_in_async_code() -> None:
    with trax.connect(memory_config(), account="acme", wait=True) as platform:
        call = platform.studios.create(name="eager")
        assert call.done()
        assert (await call).name == "eager"


def test_close_stops_runtime_and_thread() -> None:
    platform = trax.connect(memory_config())
    thread = platform._thread.thread
    assert platform.runtime.started and thread.is_alive()
    platform.close()
    platform.close()
    assert not platform.runtime.started and not thread.is_alive() and platform.closed
    with pytest.raises(RuntimeError):
        platform.studios.list().first()


def test_usable_from_worker_threads(p: Platform) -> None:
    names: list[str] = []

    def work(i: int) -> None:
        names.append(p.studios.create(name=f"thread {i}").name)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(names) == [f"thread {i}" for i in range(4)]


def test_connect_accepts_a_file(tmp_path: Path) -> None:
    cfg = tmp_path / "dev.yaml"
    cfg.write_text(
        "storage: {backend: sqlite, options: {path: " + str(tmp_path / "x.db") + "}}\n"
        "security: {secret_key_file: " + str(tmp_path / "secret.key") + "}\n"
    )
    with trax.connect(str(cfg), account="acme") as platform:
        assert platform.health().status == "ok"
        assert platform.runtime.settings.storage.backend == "sqlite"


def test_an_unused_failed_call_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    import gc
    import logging

    with trax.connect(memory_config(), account="acme", wait=False) as platform:
        call = platform.studios.get("studio_01HZZZZZZZZZZZZZZZZZZZZZZZ")
        concurrent.futures.wait([call._future], timeout=30)
        assert call.done()
        with caplog.at_level(logging.WARNING, logger="trax.client.bridge"):
            del call
            gc.collect()
    assert any("never used" in r.getMessage() and "NotFound" in r.getMessage() for r in caplog.records)


def test_connect_with_the_dev_deployment_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(tmp_path)  # dev.yaml keeps its data under ./var
    with trax.connect(repo / "configs" / "dev.yaml", account="acme") as platform:
        studio = platform.studios.create(name="dev")
        assert studio.sources.create(kind="rtmp").status == "idle"
    assert (tmp_path / "var").is_dir()
