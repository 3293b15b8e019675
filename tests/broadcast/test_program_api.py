"""/v1 surface of the broadcast: Studio.program, custom_srt destinations, program tokens, stream-status, secrets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import memory_settings
from trax.runtime import Runtime
from trax.server.app import create_app

pytestmark = pytest.mark.anyio

SECRET_KEY = "live_abcdefgh_SECRET_KEY_1234"
PASSPHRASE = "correct-horse-battery"
STREAMID = "publish:very/secret/streamid"


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    rt = Runtime(memory_settings(tmp_path))  # type: ignore[arg-type]
    app = create_app(rt)
    async with app.lifespan():
        acct = await rt.services.accounts.create("acme")
        from trax.services import Principal

        _, secret = await rt.services.keys.create(
            Principal.operator(acct.id),
            name="all",
            scopes=[
                "studios:write",
                "studios:read",
                "sources:write",
                "sources:read",
                "destinations:write",
                "destinations:read",
                "stream:read",
                "stream:write",
                "media:read",
            ],
        )
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers={"Authorization": f"Bearer {secret}"}
        ) as client:
            yield client


async def studio_with_sources(http: httpx.AsyncClient, n: int = 2) -> tuple[str, list[str]]:
    studio = (await http.post("/v1/studios", json={"name": "Show"})).json()
    ids = []
    for i in range(n):
        r = await http.post(f"/v1/studios/{studio['id']}/sources", json={"name": f"cam{i}", "kind": "rtmp"})
        ids.append(r.json()["id"])
    return studio["id"], ids


async def test_a_new_studio_has_the_default_program(http: httpx.AsyncClient) -> None:
    sid, _ = await studio_with_sources(http, 0)
    program = (await http.get(f"/v1/studios/{sid}")).json()["program"]
    assert program == {
        "layout": "single",
        "sources": [],
        "output": {"width": 1280, "height": 720, "fps": 30, "videoBitrate": 4500000, "audioBitrate": 160000},
        "passthrough": True,
        "record": False,
        "slate": "black",
    }


async def test_program_patch_merges_and_validates(http: httpx.AsyncClient) -> None:
    sid, (a, b) = await studio_with_sources(http)
    r = await http.patch(f"/v1/studios/{sid}", json={"program": {"layout": "grid", "sources": [b, a]}})
    assert r.status_code == 200, r.text
    r = await http.patch(f"/v1/studios/{sid}", json={"program": {"output": {"fps": 25}, "record": True}})
    program = r.json()["program"]
    assert program["layout"] == "grid" and program["sources"] == [b, a]  # kept
    assert program["output"]["fps"] == 25 and program["output"]["width"] == 1280 and program["record"] is True
    _, (c,) = await studio_with_sources(http, 1)
    bad: list[tuple[dict[str, Any], str]] = [
        ({"sources": [c]}, "program.sources"),  # another studio's source
        ({"sources": [a, a]}, "program.sources"),
        ({"layout": "mosaic"}, "program.layout"),
        ({"output": {"fps": 61}}, "program.output.fps"),
        ({"output": {"width": 100}}, "program.output.width"),
        ({"output": {"width": 1281}}, "program.output"),
        ({"slate": "asset_01JDQ4V1ZQ7Y9N6X3W2T8R5K0M"}, "program.slate"),
        ({"passthrough": "yes"}, "program.passthrough"),
        ({"colour": "red"}, "program.colour"),
    ]
    for patch, param in bad:
        r = await http.patch(f"/v1/studios/{sid}", json={"program": patch})
        assert r.status_code == 400, (patch, r.text)
        err = r.json()["error"]
        assert err["code"] == "invalid_request"
        assert err.get("param", "").startswith(param.split(".")[0]), (patch, err)
    # nothing of the refused patches was stored
    assert (await http.get(f"/v1/studios/{sid}")).json()["program"] == program


async def test_custom_srt_destination_keeps_its_secrets_write_only(http: httpx.AsyncClient) -> None:
    sid, _ = await studio_with_sources(http, 0)
    r = await http.post(
        f"/v1/studios/{sid}/destinations",
        json={
            "name": "SRT out",
            "platform": "custom_srt",
            "srtUrl": f"srt://127.0.0.1:9000?streamid={STREAMID}",
            "passphrase": PASSPHRASE,
        },
    )
    assert r.status_code == 201, r.text
    dst = r.json()
    assert dst["srtUrl"] == "srt://127.0.0.1:9000"
    listing = (await http.get(f"/v1/studios/{sid}/destinations")).text
    for text in (r.text, listing):
        assert PASSPHRASE not in text and STREAMID not in text and "very" not in text
    for body, param in [
        ({"srtUrl": "http://example.com:9000"}, "srtUrl"),
        ({"srtUrl": "srt://host-without-port"}, "srtUrl"),
        ({"srtUrl": "srt://h:9000?latency=200"}, "srtUrl"),
        ({"passphrase": "short"}, "passphrase"),
    ]:
        r = await http.patch(f"/v1/studios/{sid}/destinations/{dst['id']}", json=body)
        assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text
    r = await http.post(
        f"/v1/studios/{sid}/destinations",
        json={
            "name": "x",
            "platform": "custom_rtmp",
            "rtmpUrl": "rtmp://h/app",
            "streamKey": "k",
            "passphrase": PASSPHRASE,
        },
    )
    assert r.status_code == 400


async def test_program_session_token_reads_and_is_scoped(http: httpx.AsyncClient) -> None:
    sid, _ = await studio_with_sources(http, 0)
    r = await http.post(f"/v1/studios/{sid}/program/session-tokens", json={})
    assert r.status_code == 201, r.text
    creds = r.json()
    assert creds["path"] == f"studios/{sid}/program" and creds["action"] == "read"
    r = await http.post(f"/v1/studios/{sid}/program/session-tokens", json={"action": "publish"})
    assert r.status_code == 400
    r = await http.post("/v1/studios/studio_01JDQ4V1ZQ7Y9N6X3W2T8R5K0M/program/session-tokens", json={})
    assert r.status_code == 404


async def test_stream_status_reports_the_program_while_live(http: httpx.AsyncClient) -> None:
    sid, _ = await studio_with_sources(http, 1)
    before = (await http.get(f"/v1/studios/{sid}/stream-status")).json()
    assert "program" not in before
    r = await http.post(f"/v1/studios/{sid}/go-live")
    assert r.status_code == 202 and r.json()["status"] == "live"
    assert r.json()["program"]["status"] in ("running", "starting")
    r = await http.post(f"/v1/studios/{sid}/go-offline")
    assert r.status_code == 202 and r.json()["status"] == "offline"
    assert "program" not in r.json()
