"""A real ``trax serve`` with RTMP ingest, an API key, and ffmpeg encoders publishing into its sources."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import end
from tests.support.server import ServerProcess, dev_config
from trax.domain.scopes import SCOPES
from trax.ports import free_port


@dataclass
class Deployment:
    server: ServerProcess
    http: httpx.Client
    rtmp_port: int
    work: Path

    def studio(self, name: str = "Show") -> str:
        r = self.http.post("/v1/studios", json={"name": name})
        r.raise_for_status()
        return str(r.json()["id"])

    def source(self, studio_id: str, kind: str = "rtmp", **extra: Any) -> dict[str, Any]:
        r = self.http.post(f"/v1/studios/{studio_id}/sources", json={"name": "cam", "kind": kind, **extra})
        r.raise_for_status()
        return dict(r.json())

    def destination(self, studio_id: str, **body: Any) -> dict[str, Any]:
        r = self.http.post(f"/v1/studios/{studio_id}/destinations", json={"name": "out", **body})
        assert r.status_code == 201, r.text
        return dict(r.json())

    def publish_url(self, source: dict[str, Any]) -> str:
        minted = self.server.cli_json("tokens", "mint", "--path", source["ingest"]["path"], "--action", "publish")
        return str(minted["urls"]["rtmp"])

    def status(self, studio_id: str) -> dict[str, Any]:
        return dict(self.http.get(f"/v1/studios/{studio_id}/stream-status").json())

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what}\n{self.server.log()[-4000:]}")

    def wait_destinations(
        self, studio_id: str, status: str, timeout: float = 30.0, *, ids: set[str] | None = None
    ) -> None:
        def ok() -> bool:
            dests = self.status(studio_id)["destinations"]
            return all(d["status"] == status for d in dests if ids is None or d["id"] in ids)

        self.wait_for(f"destinations {status}", ok, timeout)

    def wait_source_live(self, studio_id: str, source_id: str, timeout: float = 30.0) -> None:
        def ok() -> bool:
            return any(s["id"] == source_id and s["status"] == "live" for s in self.status(studio_id)["sources"])

        self.wait_for(f"source {source_id} live", ok, timeout)


@contextmanager
def deployment(tmp: Path, **sections: Any) -> Iterator[Deployment]:
    rtmp_port = free_port()
    config = dev_config(tmp, ingest={"host": "127.0.0.1", "rtmp": {"enabled": True, "port": rtmp_port}}, **sections)
    server = ServerProcess(config, tmp)
    server.start(timeout=120)
    try:
        server.cli_json("accounts", "create", "acme")
        scopes = [a for s in SCOPES for a in ("--scope", s)]
        key = server.cli_json("keys", "create", "--account", "acme", "--name", "ops", *scopes)
        headers = {"Authorization": f"Bearer {key['secret']}"}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
            yield Deployment(server, http, rtmp_port, tmp)
    finally:
        server.stop()


def encoder_cmd(
    ffmpeg: str, url: str, seconds: float, *, colour: str | None = None, size: str = "640x360"
) -> list[str]:
    """A real-time encoder: a test pattern (or a solid colour) with a tone, H.264 with 1 s GOPs + AAC, over RTMP."""
    video = f"color=c={colour}:size={size}:rate=30" if colour else f"testsrc2=size={size}:rate=30"
    return [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
        "-f", "lavfi", "-i", video,
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p", "-g", "30",
        "-c:a", "aac", "-ac", "2", "-b:a", "96k",
        "-f", "flv", url,
    ]  # fmt: skip


@contextmanager
def encoding(cmd: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        end(proc, 15)


def ffprobe_packets(ffprobe: str, file: Path, stream: str = "v:0") -> list[float]:
    """The dts (seconds) of every packet of one stream of ``file``, in file order."""
    out = subprocess.run(
        [ffprobe, "-v", "error", "-select_streams", stream, "-show_entries", "packet=dts_time", "-of", "csv=p=0",
         str(file)],
        capture_output=True, text=True, timeout=120, check=False,
    ).stdout  # fmt: skip
    return [float(line.split(",")[0]) for line in out.splitlines() if line.strip() and line.split(",")[0] != "N/A"]


def ffprobe_duration(ffprobe: str, file: Path) -> float:
    out = subprocess.run(
        [ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(file)],
        capture_output=True, text=True, timeout=60, check=False,
    ).stdout.strip()  # fmt: skip
    return float(out) if out and out != "N/A" else 0.0
