"""The runtime: building from settings, transports switched on by the file, the server secret, lifecycle."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import memory_settings
from tests.unit.helpers import make_services
from trax.domain import events
from trax.domain.errors import InvalidRequest
from trax.domain.events import Event
from trax.domain.pages import clamp_limit
from trax.interfaces import Write
from trax.plugin_api import Backend, hookimpl
from trax.plugin_manager import make_plugin_manager
from trax.plugins.memory_storage import MemoryStorage
from trax.runtime import Runtime
from trax.secrets_store import load_server_key
from trax.services import Principal
from trax.settings import ConfigError, SecuritySettings, load_settings


class DummyTransport:
    def __init__(self, port: int) -> None:
        self.name = "dummy"
        self.port = port
        self.running = False

    async def start(self) -> None:
        self.running = True

    async def stop(self) -> None:
        self.running = False


class DummyPlugin:
    @hookimpl
    def trax_register_transports(self) -> list[Backend[Any]]:
        from pydantic import BaseModel, ConfigDict

        class Options(BaseModel):
            model_config = ConfigDict(extra="forbid")
            port: int = 9

        return [Backend("dummy", lambda o, rt: DummyTransport(o.port), Options)]


def _running(runtime: Runtime) -> bool:
    return any(getattr(t, "running", False) for t in runtime.transports.values())


class Lifecycle:
    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    def trax_configure(self, settings: Any) -> None:
        self.calls.append("configure")

    @hookimpl
    async def trax_startup(self, runtime: Runtime) -> None:
        await asyncio.sleep(0)
        self.calls.append(f"startup transports_running={_running(runtime)}")

    @hookimpl
    def trax_shutdown(self, runtime: Runtime) -> None:
        self.calls.append(f"shutdown transports_running={_running(runtime)}")


def _runtime(tmp_path: Path, plugins: list[object], **sections: Any) -> Runtime:
    settings = memory_settings(tmp_path, **sections)
    return Runtime(settings, make_plugin_manager(settings, extra_plugins=plugins))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("enabled", "on"),
    [(True, True), ("true", True), ("1", True), (False, False), ("false", False), ("0", False), ("off", False)],
)
def test_ingest_enabled_is_read_as_a_boolean(tmp_path: Path, enabled: object, on: bool) -> None:
    rt = _runtime(tmp_path, [DummyPlugin()], ingest={"dummy": {"enabled": enabled, "port": 7}})
    assert ("dummy" in rt.transports) is on
    if on:
        assert rt.transports["dummy"].port == 7  # type: ignore[attr-defined]


def test_env_can_switch_a_transport_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAX_INGEST__DUMMY__ENABLED", "false")
    rt = _runtime(tmp_path, [DummyPlugin()], ingest={"dummy": {"enabled": True}})
    assert rt.transports == {}


@pytest.mark.parametrize(
    ("ingest", "message"),
    [
        ({"dummy": 5}, "ingest.dummy: must be a mapping"),
        ({"dummy": {"enabled": "maybe"}}, "ingest.dummy.enabled: must be true or false"),
        ({"dummy": {"enabled": True, "prot": 1}}, "ingest.dummy.options.prot: unknown key"),
        ({"nosuch": {"enabled": True}}, "ingest.nosuch: unknown transport; known: "),
    ],
)
def test_bad_ingest_sections_are_config_errors(tmp_path: Path, ingest: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        _runtime(tmp_path, [DummyPlugin()], ingest=ingest)
    assert message in str(err.value)


@pytest.mark.anyio
async def test_lifecycle_order_and_transports(tmp_path: Path) -> None:
    life = Lifecycle()
    rt = _runtime(tmp_path, [DummyPlugin(), life], ingest={"dummy": {"enabled": True}})
    assert life.calls == ["configure"]
    await rt.start(transports=True)
    assert rt.started and rt.transports["dummy"].running  # type: ignore[attr-defined]
    await rt.start()  # starting twice is harmless
    await rt.stop()
    await rt.stop()
    assert life.calls == ["configure", "startup transports_running=False", "shutdown transports_running=False"]
    assert not rt.transports["dummy"].running  # type: ignore[attr-defined]


class StartupFails:
    @hookimpl
    def trax_startup(self, runtime: Runtime) -> None:
        raise RuntimeError("cannot start")


@pytest.mark.anyio
async def test_a_failed_start_closes_what_it_opened(tmp_path: Path) -> None:
    rt = _runtime(tmp_path, [StartupFails()])
    closed: list[str] = []
    original = rt.storage.close

    async def spy_close() -> None:
        closed.append("storage")
        await original()

    rt.storage.close = spy_close  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await rt.start()
    assert closed == ["storage"] and not rt.started


def test_platforms_may_be_named_without_options(tmp_path: Path) -> None:
    settings = load_settings(None, platforms={"loopback": None}, security={"secret_key": "k" * 40})
    assert "loopback" in Runtime(settings).platforms


def test_route_costs_must_be_positive() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, limits={"route_costs": {"createUpload": 0}})
    assert "limits.route_costs.createUpload" in str(err.value)


def test_limit_must_be_an_integer() -> None:
    for bad in ("5", 2.5, True):
        with pytest.raises(InvalidRequest):
            clamp_limit(bad)  # type: ignore[arg-type]


# --- the server secret ----------------------------------------------------------------------------


def test_secret_file_is_created_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "var" / "secret.key"
    first = load_server_key(SecuritySettings(secret_key_file=path))
    assert len(first) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_server_key(SecuritySettings(secret_key_file=path)) == first
    assert [p.name for p in path.parent.iterdir()] == ["secret.key"]  # no temporary file left


def test_processes_starting_together_agree_on_one_secret(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    results: list[bytes] = []
    errors: list[BaseException] = []
    gate = threading.Barrier(8)

    def load() -> None:
        try:
            gate.wait(timeout=10)
            results.append(load_server_key(SecuritySettings(secret_key_file=path)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors and len(results) == 8 and len(set(results)) == 1


def test_secret_problems_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_server_key(SecuritySettings(secret_key="too short"))  # type: ignore[arg-type]
    (tmp_path / "short.key").write_text("abc")
    with pytest.raises(ConfigError):
        load_server_key(SecuritySettings(secret_key_file=tmp_path / "short.key"))
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError) as err:
        load_server_key(SecuritySettings(secret_key_file=blocker / "secret.key"))
    assert "cannot" in str(err.value)
    if os.geteuid() != 0:  # root reads anything; the check only means something for other users
        locked = tmp_path / "locked.key"
        locked.write_text("x" * 40)
        locked.chmod(0)
        with pytest.raises(ConfigError):
            load_server_key(SecuritySettings(secret_key_file=locked))


# --- concurrent go-live ----------------------------------------------------------------------------


class YieldingStorage(MemoryStorage):
    """Memory storage that yields to the loop on every call, as a networked or threaded backend does,
    so concurrent use cases really interleave (all read before any writes)."""

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0)
        return await super().get(*args, **kwargs)

    async def apply(self, writes: Sequence[Write]) -> None:
        await asyncio.sleep(0)
        await super().apply(writes)


@pytest.mark.anyio
async def test_concurrent_go_live_changes_once_and_the_rest_are_repeats() -> None:
    svc = make_services(YieldingStorage())
    seen: list[Event] = []

    async def collect(e: Event) -> None:
        seen.append(e)

    svc.deps.bus.subscribe(collect)
    op = Principal.operator((await svc.accounts.create("race")).id)
    studio = await svc.studios.create(op, name="S")
    results = await asyncio.gather(*(svc.studios.go_live(op, studio.id) for _ in range(6)))
    assert sum(changed for _, changed in results) == 1
    # the one that changed it answers live; a repeat answers what it found (starting while the first finishes)
    assert all(status.status == ("live" if changed else status.status) for status, changed in results)
    assert {status.status for status, _ in results} <= {"starting", "live"}
    assert (await svc.studios.get(op, studio.id)).status == "live"
    assert [e.type for e in seen] == [events.STREAM_LIVE]
    results = await asyncio.gather(*(svc.studios.go_offline(op, studio.id) for _ in range(6)))
    assert sum(changed for _, changed in results) == 1
    assert [e.type for e in seen] == [events.STREAM_LIVE, events.STREAM_OFFLINE]


@pytest.mark.anyio
@pytest.mark.parametrize("delete_first", [True, False])
async def test_delete_racing_go_live_never_deletes_a_live_studio(delete_first: bool) -> None:
    from trax.domain.errors import Conflict, NotFound

    svc = make_services(YieldingStorage())
    op = Principal.operator((await svc.accounts.create("race")).id)
    studio = await svc.studios.create(op, name="S")
    await svc.sources.create(op, studio.id, name="cam", kind="srt")
    calls = [svc.studios.delete(op, studio.id), svc.studios.go_live(op, studio.id)]
    if not delete_first:
        calls.reverse()
    results = await asyncio.gather(*calls, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1 and isinstance(failures[0], Conflict | NotFound), results
    try:
        current = await svc.studios.get(op, studio.id)
    except NotFound:
        current = None
    if current is not None:  # go-live won: the studio is live and whole
        assert current.status == "live" and isinstance(failures[0], Conflict)
        assert len((await svc.sources.list(op, studio.id)).data) == 1
    else:  # delete won: nothing of it is left and it never went live
        assert isinstance(failures[0], NotFound)


@pytest.mark.anyio
async def test_key_use_times_are_flushed_when_the_runtime_stops(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        storage={"backend": "sqlite", "options": {"path": str(tmp_path / "t.db")}},
        blobs={"backend": "memory"},
        security={"secret_key": "flush-secret-" + "x" * 40},
    )
    async with Runtime(settings) as rt:
        op = Principal.operator((await rt.services.accounts.create("a")).id)
        key, secret = await rt.services.keys.create(op, name="k", scopes=["studios:read"])
        await rt.services.keys.authenticate(secret)
        assert (await rt.services.keys.get(op, key.id)).last_used_at is None  # buffered, not written per request
    async with Runtime(settings) as rt:
        assert (await rt.services.keys.get(op, key.id)).last_used_at is not None


class Recorder:
    def __init__(self, name: str, log: list[str], *, fail_shutdown: bool = False) -> None:
        self.name, self.log, self.fail_shutdown = name, log, fail_shutdown

    @hookimpl
    async def trax_startup(self, runtime: Runtime) -> None:
        self.log.append(f"start {self.name}")

    @hookimpl
    def trax_shutdown(self, runtime: Runtime) -> None:
        self.log.append(f"stop {self.name}")
        if self.fail_shutdown:
            raise RuntimeError("shutdown bug")


@pytest.mark.anyio
async def test_shutdown_runs_every_plugin_in_reverse_start_order(tmp_path: Path) -> None:
    log: list[str] = []
    plugins = [Recorder("a", log, fail_shutdown=True), Recorder("b", log, fail_shutdown=True), Recorder("c", log)]
    rt = _runtime(tmp_path, plugins)  # type: ignore[arg-type]
    async with rt:
        pass
    starts = [x.split()[1] for x in log if x.startswith("start")]
    stops = [x.split()[1] for x in log if x.startswith("stop")]
    assert sorted(starts) == ["a", "b", "c"]
    assert stops == starts[::-1]  # and a failing shutdown did not keep the others from running
