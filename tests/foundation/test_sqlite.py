"""SQLite storage: WAL, versioned migrations, data kept across reopen and across kill -9."""

from __future__ import annotations

import os
import selectors
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from tests.unit.helpers import make_services
from trax.codec import encode_entity
from trax.domain.studios import Studio
from trax.plugins.sqlite_storage import MIGRATIONS, SqliteOptions, SqliteStorage
from trax.services import Principal

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


def _versions(path: Path) -> list[int]:
    with sqlite3.connect(path) as c:
        return [r[0] for r in c.execute("SELECT version FROM schema_migrations ORDER BY version")]


def _indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as c:
        return {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='index'")}


async def test_file_is_in_wal_mode_and_fully_migrated(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "trax.db"
    st = SqliteStorage(SqliteOptions(path=path))
    await st.open()
    await st.close()
    with sqlite3.connect(path) as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert _versions(path) == [v for v, _ in MIGRATIONS]


async def test_a_file_at_an_older_version_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    # Build a file as the first release left it: only migration 1, with one studio in it.
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("PRAGMA journal_mode=WAL")
    SqliteStorage._migrate(old, MIGRATIONS[:1])
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    studio = Studio(
        id="studio_01JABCDEFGHJKMNPQRSTVWXYZ0", account_id="acct_x", created_at=now, updated_at=now, name="old"
    )
    old.execute(
        "INSERT INTO entities VALUES (?,?,?,?,?,?)",
        (studio.KIND, studio.account_id, studio.id, None, now.isoformat(), encode_entity(studio).decode()),
    )
    old.close()
    assert _versions(path) == [1]
    assert "entities_by_kind_id" not in _indexes(path)

    st = SqliteStorage(SqliteOptions(path=path))
    await st.open()
    try:
        assert await st.get(Studio, "acct_x", studio.id) == studio
    finally:
        await st.close()
    assert _versions(path) == [v for v, _ in MIGRATIONS]
    assert "entities_by_kind_id" in _indexes(path)
    # opening again applies nothing twice
    st = SqliteStorage(SqliteOptions(path=path))
    await st.open()
    await st.close()
    assert _versions(path) == [v for v, _ in MIGRATIONS]


async def test_a_file_from_a_newer_trax_is_refused(tmp_path: Path) -> None:
    from trax.domain.errors import Unavailable

    path = tmp_path / "new.db"
    st = SqliteStorage(SqliteOptions(path=path))
    await st.open()
    await st.close()
    with sqlite3.connect(path) as c:
        c.execute("INSERT INTO schema_migrations VALUES (999, 'future')")
    st = SqliteStorage(SqliteOptions(path=path))
    with pytest.raises(Unavailable) as err:
        await st.open()
    assert "schema version 999" in str(err.value)


async def test_reopen_keeps_everything_written_through_the_services(tmp_path: Path) -> None:
    path = tmp_path / "trax.db"
    st = SqliteStorage(SqliteOptions(path=path))
    await st.open()
    svc = make_services(st)
    op = Principal.operator((await svc.accounts.create("keeper")).id)
    studio = await svc.studios.create(op, name="kept")
    src = await svc.sources.create(op, studio.id, name="cam", kind="srt")
    key, secret = await svc.keys.create(op, name="k", scopes=["studios:read"])
    await st.close()

    st2 = SqliteStorage(SqliteOptions(path=path))
    await st2.open()
    try:
        svc2 = make_services(st2)
        assert (await svc2.accounts.get("keeper")).id == op.account_id
        assert (await svc2.studios.get(op, studio.id)).name == "kept"
        assert (await svc2.sources.by_path(src.path)).id == src.id  # type: ignore[union-attr]
        assert (await svc2.keys.authenticate(secret)).key_id == key.id
    finally:
        await st2.close()


def _read_lines(proc: subprocess.Popen[bytes], want: int, timeout: float) -> list[str]:
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = b""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while len(lines) < want and time.monotonic() < deadline:
        if not sel.select(timeout=0.5):
            if proc.poll() is not None:
                break
            continue
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            break
        buf += chunk
        *done, buf = buf.split(b"\n")
        lines += [d.decode() for d in done]
    sel.close()
    return lines


@pytest.mark.slow
def test_every_acknowledged_write_survives_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "trax.db"
    config = {
        "storage": {"backend": "sqlite", "options": {"path": str(db)}},  # synchronous: full (the default)
        "blobs": {"backend": "memory"},
        "security": {"secret_key": "kill-nine-secret-" + "x" * 40},
    }
    cfg = tmp_path / "trax.yaml"
    cfg.write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.foundation.sqlite_writer_child", str(cfg)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        lines = _read_lines(proc, want=150, timeout=60)
        assert proc.poll() is None, "the writer stopped by itself"
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: writes are in flight
        proc.wait(timeout=10)
        assert proc.stdout is not None
        # whatever the child printed before dying was acknowledged too
        rest = proc.stdout.read().decode()
        lines += [ln for ln in rest.split("\n") if ln]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    account = lines[0].split()[1]
    acked = [ln.split()[1] for ln in lines[1:] if ln.startswith("ack ")]
    assert len(acked) >= 100

    with sqlite3.connect(db) as c:  # the way any later process finds the file: WAL replayed on open
        stored = {r[0] for r in c.execute("SELECT id FROM entities WHERE kind='studio' AND account_id=?", (account,))}
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    lost = [i for i in acked if i not in stored]
    assert not lost, f"{len(lost)} acknowledged writes were lost, e.g. {lost[:3]}"


@pytest.mark.slow
def test_the_server_keeps_acknowledged_writes_across_kill_9_and_restart(tmp_path: Path) -> None:
    import httpx

    from tests.support.server import ServerProcess, dev_config

    server = ServerProcess(dev_config(tmp_path), tmp_path)
    with server:
        server.cli_json("accounts", "create", "acme")
        key = server.cli_json(
            "keys", "create", "--account", "acme", "--name", "k", "--scope", "studios:read", "--scope", "studios:write"
        )
        headers = {"Authorization": f"Bearer {key['secret']}"}
        acked = []
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as http:
            for i in range(25):
                res = http.post("/v1/studios", json={"name": f"studio {i}"})
                assert res.status_code == 201, res.text
                acked.append(res.json()["id"])
        server.kill9()
        assert server.proc is not None and server.proc.returncode == -signal.SIGKILL
        server.start()
        seen: list[str] = []
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as http:
            cursor = None
            for _ in range(100):
                params = {"limit": 10, **({"cursor": cursor} if cursor else {})}
                page = http.get("/v1/studios", params=params).json()
                seen += [s["id"] for s in page["data"]]
                cursor = page.get("nextCursor")
                if not cursor:
                    break
    assert seen == acked
