"""Throwaway PostgreSQL and Redis servers for tests, on free loopback ports in temporary directories.

They drive the real engines (Debian's ``postgresql`` and ``redis-server``
packages): ``initdb``/``pg_ctl`` and ``redis-server``. PostgreSQL refuses to
run as root, so under root (as in CI) its commands run as the ``postgres``
system user through ``runuser``. Each server can be stopped and started again
on the same port, which is how outage tests take a backend away and bring it
back. Nothing listens beyond 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

from trax.ports import free_port

__all__ = ["PostgresServer", "RedisServer", "ServerToolMissing", "free_port"]

PG_BINDIRS = ("/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin")


class ServerToolMissing(RuntimeError):
    """The engine's programs are not installed."""


def find_pg_bindir() -> Path | None:
    for d in PG_BINDIRS:
        if os.path.exists(os.path.join(d, "pg_ctl")):
            return Path(d)
    found = shutil.which("pg_ctl")
    return Path(os.path.realpath(found)).parent if found else None


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
        time.sleep(0.05)
    return False


class _Throwaway:
    """What both servers share: a log to show when something fails, and ``with`` that always cleans up."""

    logfile: Path

    def start(self) -> Self:
        raise NotImplementedError

    def cleanup(self) -> None:
        raise NotImplementedError

    def log(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


class PostgresServer(_Throwaway):
    """``with PostgresServer() as pg: pg.dsn`` — a fresh cluster, removed afterwards."""

    user = "trax"
    database = "postgres"

    def __init__(self, *, port: int | None = None) -> None:
        bindir = find_pg_bindir()
        if bindir is None:
            raise ServerToolMissing("PostgreSQL (initdb/pg_ctl) is not installed")
        self.bindir = bindir
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="trax-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sock"
        self.logfile = self.root / "postgres.log"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise ServerToolMissing("running as root needs the 'postgres' system user") from None
            runuser = shutil.which("runuser") or next(
                (p for p in ("/usr/sbin/runuser", "/sbin/runuser") if os.path.exists(p)), None
            )
            if runuser is None:
                raise ServerToolMissing("running as root needs runuser (util-linux) to start PostgreSQL")
            self._as_user = [runuser, "-u", "postgres", "--"]
            self.sockets.mkdir()
            for p in (self.root, self.sockets):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        else:
            self.sockets.mkdir()
        self._initdb()

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _cmd(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._as_user, *args], capture_output=True, text=True, timeout=timeout, check=True, cwd=self.root
        )

    def _initdb(self) -> None:
        # trust auth is fine: the cluster listens on 127.0.0.1 only and lives for one test run
        self._cmd(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.user,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )

    def start(self, timeout: float = 30) -> PostgresServer:
        opts = (
            f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c full_page_writes=off -c max_connections=200"
        )
        try:
            self._cmd(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.logfile),
                "-o",
                opts,
                "-w",
                "-t",
                str(int(timeout)),
                "start",
                timeout=timeout + 10,
            )
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"postgres did not start: {exc.stderr}\n{self.log()}") from None
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast`` ends sessions cleanly, ``immediate`` is a crash)."""
        if not (self.data / "postmaster.pid").exists():
            return
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def _pids(self) -> list[int]:
        """The postmaster and its children (backends, background workers)."""
        try:
            main = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        return [main, *_children(main)]

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open and nothing answers, like a hung host."""
        for pid in self._pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in self._pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def cleanup(self) -> None:
        self.resume()
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer(_Throwaway):
    """``with RedisServer() as r: r.url`` — no persistence, removed afterwards."""

    def __init__(self, *, port: int | None = None) -> None:
        exe = shutil.which("redis-server") or (
            "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
        )
        if exe is None:
            raise ServerToolMissing("redis-server is not installed")
        self.exe = exe
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="trax-redis-"))
        self.logfile = self.root / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20) -> RedisServer:
        # fmt: off
        args = [
            self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(self.root), "--logfile", str(self.logfile), "--daemonize", "no", "--protected-mode", "yes",
        ]
        # fmt: on
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.root)
        if not _wait_port(self.port, timeout):
            self.stop()
            raise RuntimeError(f"redis-server did not start:\n{self.log()}")
        return self

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open and nothing answers."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
