"""The WHIP/WHEP HTTP surface without WebRTC: Link headers for ICE servers, TLS, envelope details."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from litestar.testing import TestClient

from tests.ingest.whip_support import whip_plane
from trax.domain.errors import Unauthorized
from trax.ingest.whip.app import create_whip_app
from trax.ingest.whip.ice import link_headers
from trax.ingest.whip.options import IceServer, WhipOptions

PATH = "inputs/whip-00000000-0000-4000-8000-000000000000"


class FakeSession:
    id = "sess1"
    etag = '"e1"'


class FakePlane:
    """Answers every offer; stands in for aiortc so only the HTTP layer is under test."""

    def __init__(self) -> None:
        self.offers: list[str] = []

    async def publish(self, path: str, sdp: str, credential: str, **_: Any) -> tuple[Any, str]:
        self.offers.append(sdp)
        return FakeSession(), "v=0\r\nanswer\r\n"

    play = publish

    def get(self, sid: str) -> None:
        return None


async def authorize(credential: str, **kw: Any) -> dict[str, Any]:
    if credential != "good":
        raise Unauthorized("bad token")
    return {}


async def exists(path: str) -> bool:
    return path == PATH


def client(options: WhipOptions) -> TestClient[Any]:
    app = create_whip_app(
        FakePlane(),  # type: ignore[arg-type]
        options,
        authorize=authorize,
        path_exists=exists,
        new_request_id=lambda: "req_test",
    )
    return TestClient(app)


def test_no_ice_server_unless_configured() -> None:
    """aiortc would fall back to a public STUN server; the transport always passes its own list."""
    from trax.ingest.whip.ice import rtc_configuration

    assert rtc_configuration([]).iceServers == []
    [server] = rtc_configuration([IceServer(urls=["stun:127.0.0.1:3478"])]).iceServers
    assert server.urls == ["stun:127.0.0.1:3478"]


def test_ice_servers_are_link_headers() -> None:
    servers = [
        IceServer(urls=["stun:stun.example.test:3478"]),
        IceServer(urls=["turn:turn.example.test:3478?transport=udp"], username='u"1', credential="p\\w"),
    ]
    assert link_headers(servers) == [
        '<stun:stun.example.test:3478>; rel="ice-server"',
        '<turn:turn.example.test:3478?transport=udp>; rel="ice-server"; username="u\\"1"; '
        'credential="p\\\\w"; credential-type="password"',
    ]
    with client(WhipOptions(ice_servers=servers)) as c:
        resp = c.post(
            f"/{PATH}/whip", content="v=0", headers={"Content-Type": "application/sdp", "Authorization": "Bearer good"}
        )
        assert resp.status_code == 201
        assert resp.headers["location"] == f"/{PATH}/whip/sess1"
        assert resp.headers["etag"] == '"e1"'
        assert resp.headers["link"].count('rel="ice-server"') == 2
        assert resp.headers["x-request-id"] == "req_test"


def test_request_id_is_echoed_when_well_formed() -> None:
    with client(WhipOptions()) as c:
        resp = c.post(
            f"/{PATH}/whip", content="v=0", headers={"Content-Type": "application/sdp", "X-Request-Id": "abc-123"}
        )
        assert resp.status_code == 401 and resp.headers["x-request-id"] == "abc-123"
        assert resp.json()["error"]["requestId"] == "abc-123"
        resp = c.post(
            f"/{PATH}/whip", content="v=0", headers={"Content-Type": "application/sdp", "X-Request-Id": "bad id!"}
        )
        assert resp.headers["x-request-id"] == "req_test"
        # an unknown path is a 404 only for a valid credential
        other = "inputs/whip-11111111-1111-4111-8111-111111111111"
        resp = c.post(
            f"/{other}/whep", content="v=0", headers={"Content-Type": "application/sdp", "Authorization": "Bearer good"}
        )
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.mark.anyio
async def test_whip_over_tls(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    async with whip_plane(tmp_path, certfile=str(cert), keyfile=str(key)) as plane:
        assert plane.base.startswith("https://")
        src = await plane.source()
        creds = await plane.rt.media_tokens.mint(path=src.path, action="publish")
        assert creds.urls["whip"].startswith(f"{plane.base}/{src.path}/whip?access_token=")
        ctx = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(verify=ctx, timeout=10) as http:
            resp = await http.options(plane.url(src.path, "whip"))
            assert resp.status_code == 204 and resp.headers["accept-post"] == "application/sdp"
        with pytest.raises(httpx.HTTPError):  # plain HTTP to the TLS port does not work
            async with httpx.AsyncClient(timeout=2) as http:
                await http.options(plane.url(src.path, "whip").replace("https://", "http://"))
