"""A real ``trax serve`` with RTMP and SRT on free ports, driven over /v1, and ffmpeg as encoder and player."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.ingest.srt_support import decoded_file_frames
from tests.support.server import ServerProcess, dev_config
from trax.ports import free_port

FPS = 25
QUIET = ["-hide_banner", "-nostdin", "-loglevel", "error"]
TEST_SRC = ["-re", "-f", "lavfi", "-i", f"testsrc=size=320x240:rate={FPS}"]
TEST_SRC += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
H264_AAC = ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(FPS), "-pix_fmt", "yuv420p"]
H264_AAC += ["-c:a", "aac", "-b:a", "64k"]


@dataclass
class Served:
    server: ServerProcess
    http: httpx.Client
    studio_id: str
    secret: str

    def new_source(self, kind: str = "rtmp") -> dict[str, Any]:
        r = self.http.post(f"/v1/studios/{self.studio_id}/sources", json={"name": f"cam-{kind}", "kind": kind})
        assert r.status_code == 201, r.text
        return dict(r.json())

    def source_status(self, source_id: str) -> dict[str, Any]:
        r = self.http.get(f"/v1/studios/{self.studio_id}/stream-status")
        assert r.status_code == 200, r.text
        return next(s for s in r.json()["sources"] if s["id"] == source_id)

    def wait_status(self, source_id: str, status: str, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            state = self.source_status(source_id)
            if state["status"] == status or time.monotonic() > deadline:
                return state
            time.sleep(0.2)

    def read_token(self, source_id: str) -> dict[str, Any]:
        r = self.http.post(f"/v1/studios/{self.studio_id}/sources/{source_id}/session-tokens", json={"action": "read"})
        assert r.status_code == 201, r.text
        return dict(r.json())


def serve_config(tmp_path: Path) -> dict[str, Any]:
    ingest = {
        "host": "127.0.0.1",
        "rtmp": {"enabled": True, "port": free_port()},
        "srt": {"enabled": True, "port": free_port(socket.SOCK_DGRAM)},
    }
    return dev_config(tmp_path, ingest=ingest)


@contextmanager
def served(tmp_path: Path, config: dict[str, Any] | None = None) -> Iterator[Served]:
    server = ServerProcess(config or serve_config(tmp_path), tmp_path)
    server.start(timeout=120)  # building the /v1 app is slow on a loaded 2-core machine
    try:
        server.cli_json("accounts", "create", "acme")
        scopes = ["studios:write", "studios:read", "sources:write", "sources:read", "stream:read"]
        key = server.cli_json("keys", "create", "--account", "acme", "--name", "ops", *[f"--scope={s}" for s in scopes])
        with httpx.Client(
            base_url=server.base_url, headers={"Authorization": f"Bearer {key['secret']}"}, timeout=30
        ) as http:
            studio = http.post("/v1/studios", json={"name": "s"}).json()
            yield Served(server, http, studio["id"], key["secret"])
    finally:
        server.stop()


def obs_publish(ffmpeg: str, server_url: str, stream_key: str, seconds: float) -> subprocess.Popen[bytes]:
    """Publish the way OBS does: the Server URL, and the Stream Key as the RTMP play path."""
    app = server_url.split("://", 1)[1].split("/", 1)[1]
    cmd = [ffmpeg, *QUIET, *TEST_SRC, "-t", str(seconds), *H264_AAC]
    cmd += ["-f", "flv", "-rtmp_app", app, "-rtmp_playpath", stream_key, server_url]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def publish(ffmpeg: str, url: str, seconds: float, fmt: str) -> subprocess.Popen[bytes]:
    cmd = [ffmpeg, *QUIET, *TEST_SRC, "-t", str(seconds), *H264_AAC, "-f", fmt, url]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def read_frames(ffmpeg: str, url: str, out: Path, seconds: float = 3) -> dict[str, int]:
    """Play ``url`` for ``seconds`` into a file and decode it: frames per kind (what a player would show)."""
    cmd = [ffmpeg, *QUIET, "-y", "-i", url, "-t", str(seconds), "-c", "copy", "-f", "flv", str(out)]
    subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False)
    return decoded_file_frames(out)


def stop(proc: subprocess.Popen[bytes], timeout: float = 20) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return proc.returncode, err.decode(errors="replace")
