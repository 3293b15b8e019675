"""A real ``trax serve`` process on loopback, started from a deployment file, always stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from trax.ports import free_port


class ServerProcess:
    def __init__(self, config: dict[str, Any], workdir: Path, *, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.port = config.setdefault("server", {}).setdefault("port", free_port())
        config["server"].setdefault("host", "127.0.0.1")
        self.config_path = workdir / f"trax-{self.port}.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"server-{self.port}.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``trax ARGS -c CONFIG --json`` against the same deployment file."""
        cmd = [sys.executable, "-m", "trax.cli", *args, "-c", str(self.config_path), "--json"]
        return subprocess.run(
            cmd, cwd=self.workdir, env=self.env, capture_output=True, text=True, check=check, timeout=60
        )

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args).stdout)

    def start(self, timeout: float = 30.0) -> ServerProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "trax.cli", "serve", str(self.config_path)],
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"trax serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.base_url + "/v1/health", timeout=1.0).status_code in (200, 503):
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"trax serve did not answer within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill9()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def dev_config(tmp: Path, **sections: Any) -> dict[str, Any]:
    """The dev deployment with every path inside ``tmp``; ``sections`` replace whole sections."""
    config: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": free_port()},
        "storage": {"backend": "sqlite", "options": {"path": str(tmp / "trax.db")}},
        "limits": {"backend": "memory", "options": {"capacity": 120, "refill_per_second": 20}},
        "blobs": {"backend": "filesystem", "options": {"root": str(tmp / "blobs")}},
        "public_api": {"write_enabled": True},
        "security": {"secret_key_file": str(tmp / "secret.key")},
        "platforms": {"loopback": {}},
        "broadcast": {"recordings_dir": str(tmp / "recordings"), "media_cache_dir": str(tmp / "media-cache")},
    }
    config.update(sections)
    return config
