"""The /v1 side of the matrix: one real ``trax serve``, its sources, and the credentials a streamer pastes.

Everything goes through the public HTTP API with an API key, as a studio operator would; the test never
reaches into the server process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.ingest.rtmp.support import self_signed
from tests.support.server import ServerProcess, dev_config
from trax.ports import free_port

SCOPES = ("studios:write", "studios:read", "sources:write", "sources:read", "stream:read")
KIND_OF_PROTOCOL = {"rtmp": "rtmp", "rtmps": "rtmp", "srt": "srt", "whip": "whip", "whep": "rtmp"}


@dataclass(frozen=True)
class Source:
    id: str
    path: str


@dataclass(frozen=True)
class ObsFields:
    """What OBS asks for: a Server (``rtmp[s]://host:port/app``) and a Stream Key (the rest)."""

    server: str
    stream_key: str

    @property
    def app(self) -> str:
        return urlsplit(self.server).path.strip("/")


def obs_fields(answer: Mapping[str, Any], protocol: str) -> ObsFields:
    """The answer's ``obs.<protocol>`` ``server``/``streamKey`` pair when it carries one, else the URL split.

    Session-token answers are gaining these fields; until every server has them, the full URL split at
    its last '/' is exactly what a streamer would paste into OBS.
    """
    fields = answer.get("obs", {}).get(protocol)
    if isinstance(fields, Mapping) and fields.get("server") and fields.get("streamKey"):
        return ObsFields(str(fields["server"]), str(fields["streamKey"]))
    server, _, key = str(answer["urls"][protocol]).rpartition("/")
    return ObsFields(server, key)


class Trax:
    """A studio on a running ``trax serve`` with RTMP, RTMPS, SRT and WHIP/WHEP on loopback."""

    def __init__(self, server: ServerProcess, key: str, studio_id: str, ports: Mapping[str, int]) -> None:
        self.server = server
        self.key = key
        self.studio_id = studio_id
        self.ports = dict(ports)

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.server.base_url, headers={"Authorization": f"Bearer {self.key}"}, timeout=30
        )

    async def new_source(self, protocol: str, name: str) -> Source:
        async with self.http() as api:
            resp = await api.post(
                f"/v1/studios/{self.studio_id}/sources", json={"name": name, "kind": KIND_OF_PROTOCOL[protocol]}
            )
        assert resp.status_code == 201, resp.text
        body = resp.json()
        return Source(body["id"], body["ingest"]["path"])

    async def credentials(self, source: Source, action: str) -> dict[str, Any]:
        """The session-token answer (``token``, ``urls``...), as the /v1 API gives it."""
        async with self.http() as api:
            resp = await api.post(
                f"/v1/studios/{self.studio_id}/sources/{source.id}/session-tokens", json={"action": action}
            )
        assert resp.status_code == 201, resp.text
        answer: dict[str, Any] = resp.json()
        return answer

    async def status(self, source: Source) -> str:
        async with self.http() as api:
            body = (await api.get(f"/v1/studios/{self.studio_id}/stream-status")).json()
        return str({s["id"]: s["status"] for s in body["sources"]}.get(source.id, "unknown"))

    async def wait_live(self, source: Source, within: float = 20.0) -> None:
        """Until /v1 shows the source live; a publisher that never gets there fails the cell with its status."""
        deadline = time.monotonic() + within
        status = "unknown"
        while time.monotonic() < deadline:
            status = await self.status(source)
            if status == "live":
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"the source never went live within {within:.0f}s (status {status})")


def own_address() -> list[str]:
    """This machine's address on its default route (no packet is sent), or nothing when it has none."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only selects the outgoing interface
            address = str(probe.getsockname()[0])
        except OSError:
            return []
    return [] if address.startswith("127.") else [address]


def interop_config(tmp: Path, *, srt: bool) -> tuple[dict[str, Any], dict[str, int]]:
    """``trax serve``'s deployment: every ingest transport on 127.0.0.1, RTMPS with a self-signed test certificate."""
    import socket

    certfile, keyfile = self_signed(tmp)
    ports = {"rtmp": free_port(), "rtmps": free_port(), "whip": free_port()}
    ingest: dict[str, Any] = {
        "host": "127.0.0.1",
        "rtmp": {"enabled": True, "port": ports["rtmp"]},
        "rtmps": {"enabled": True, "port": ports["rtmps"], "certfile": str(certfile), "keyfile": str(keyfile)},
        # ICE offers loopback, plus this machine's own address for libnice (webrtcbin), which never offers
        # loopback candidates: every client runs on this machine, so nothing leaves it either way
        "whip": {"enabled": True, "port": ports["whip"], "host_candidates": ["127.0.0.1", *own_address()]},
    }
    if srt:
        ports["srt"] = free_port(socket.SOCK_DGRAM)
        ingest["srt"] = {"enabled": True, "port": ports["srt"]}
    return dev_config(tmp, ingest=ingest), ports


def start_trax(tmp: Path, *, srt: bool) -> Trax:
    config, ports = interop_config(tmp, srt=srt)
    server = ServerProcess(config, tmp)
    server.start(timeout=120)  # building the /v1 app is slow on a loaded 2-core machine
    try:
        server.cli_json("accounts", "create", "interop")
        scopes = [a for s in SCOPES for a in ("--scope", s)]
        key = str(server.cli_json("keys", "create", "--account", "interop", "--name", "matrix", *scopes)["secret"])
        with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:
            resp = api.post("/v1/studios", json={"name": "Interop matrix"})
            assert resp.status_code == 201, resp.text
            studio_id = str(resp.json()["id"])
    except BaseException:
        server.stop()
        raise
    return Trax(server, key, studio_id, ports)
