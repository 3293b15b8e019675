"""Hostile input inside an account: control characters in names, deep JSON, odd page sizes, vanishing clients."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.api.conftest import Api
from trax.domain.errors import InvalidRequest
from trax.server.app import create_app

pytestmark = pytest.mark.anyio

# NUL, other C0, DEL, C1 (NEL, CSI), and every Unicode bidi control the rule names
UNSAFE = [
    "\x00",
    "\x07",
    "\x1b",
    "\n",
    "\x7f",
    "\x85",
    "\x9b",
    "\u202a",
    "\u202e",
    "\u2066",
    "\u2069",
    "\u200e",
    "\u200f",
]
UNSAFE += ["\u061c"]


async def _setup(api: Api) -> tuple[dict[str, str], str]:
    t = await api.tenant("acme")
    h = t.auth(await api.key(t))
    studio = await api.client.post("/v1/studios", json={"name": "Main"}, headers=h)
    return h, studio.json()["id"]


def _is_400(r: Any, param: str) -> bool:
    err = r.json().get("error", {})
    return bool(r.status_code == 400 and err.get("code") == "invalid_request" and err.get("param") == param)


@pytest.mark.parametrize("bad", UNSAFE, ids=[f"U+{ord(c):04X}" for c in UNSAFE])
async def test_names_refuse_control_and_bidi_characters(api: Api, bad: str) -> None:
    h, sid = await _setup(api)
    name = f"Ev{bad}il"
    creates = [
        ("/v1/studios", {"name": name}),
        (f"/v1/studios/{sid}/sources", {"name": name, "kind": "rtmp"}),
        (
            f"/v1/studios/{sid}/destinations",
            {"name": name, "platform": "custom_rtmp", "rtmpUrl": "rtmp://h.example/a", "streamKey": "k123"},
        ),
        ("/v1/keys", {"name": name, "scopes": ["studios:read"]}),
        ("/v1/media/uploads", {"name": name, "contentType": "video/mp4", "sizeBytes": 10}),
    ]
    for path, body in creates:
        r = await api.client.post(path, json=body, headers=h)
        assert _is_400(r, "name"), (path, r.status_code, r.text)
        assert "control" in r.json()["error"]["message"] and "\\x" not in r.json()["error"]["message"]
    r = await api.client.patch(f"/v1/studios/{sid}", json={"name": name}, headers=h)
    assert _is_400(r, "name"), r.text
    listed = (await api.client.get("/v1/studios", headers=h)).json()["data"]
    assert [s["name"] for s in listed] == ["Main"]


@pytest.mark.parametrize("bad", ["\x00", "\u202e", "\x1b"])
async def test_identifier_fields_and_in_process_callers_get_the_same_rule(api: Api, bad: str) -> None:
    h, sid = await _setup(api)
    dest = {"name": "YT", "platform": "custom_rtmp", "rtmpUrl": "rtmp://h.example/a", "streamKey": f"k1{bad}23"}
    r = await api.client.post(f"/v1/studios/{sid}/destinations", json=dest, headers=h)
    assert _is_400(r, "streamKey"), r.text
    t = await api.tenant("notebook")
    with pytest.raises(InvalidRequest) as err:
        await api.runtime.services.accounts.create(f"acme{bad}")
    assert err.value.param == "name"
    with pytest.raises(InvalidRequest) as err:
        await api.runtime.services.connections.link(
            t.account_id, platform="loopback", display_name=f"chan{bad}", external_account_id="x1"
        )
    assert err.value.param == "displayName"


async def test_prose_keeps_newlines_and_right_to_left_text_but_not_nul(api: Api) -> None:
    h, sid = await _setup(api)
    prose = "line one\nline two\t\u202b\u0645\u0631\u062d\u0628\u0627"  # RLE + an Arabic greeting
    ok = await api.client.patch(f"/v1/studios/{sid}", json={"description": prose}, headers=h)
    assert ok.status_code == 200, ok.text
    assert ok.json()["description"] == prose
    r = await api.client.patch(f"/v1/studios/{sid}", json={"description": "nul\x00byte"}, headers=h)
    assert _is_400(r, "description"), r.text
    r = await api.client.post(f"/v1/studios/{sid}/chat/messages", json={"text": "hi\x00"}, headers=h)
    assert _is_400(r, "text"), r.text


@pytest.mark.parametrize("bad", ["1e3", "%2B5", "+5", "%205", "5.0", "5%2E0", "1_000", "0x10", "05", "9" * 40])
@pytest.mark.parametrize("path", ["/v1/studios", "/v1/keys"])  # the fast-path list and a plain one
async def test_page_size_must_be_a_plain_decimal_integer(api: Api, bad: str, path: str) -> None:
    h, _ = await _setup(api)
    r = await api.client.get(f"{path}?limit={bad}", headers=h)
    assert _is_400(r, "limit"), (bad, r.status_code, r.text)
    assert r.json()["error"]["requestId"] == r.headers["x-request-id"]
    # a percent-escaped parameter name is the same parameter
    r = await api.client.get(f"{path}?%6Cimit={bad}", headers=h)
    assert _is_400(r, "limit"), (bad, r.status_code, r.text)
    good = await api.client.get(f"{path}?limit=5", headers=h)
    assert good.status_code == 200


@pytest.mark.parametrize("path", ["/v1/studios", "/v1/keys", "/v1/media/uploads"])
async def test_deeply_nested_json_is_a_400_without_a_traceback(
    api: Api, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    h, _ = await _setup(api)
    depth = 100_000  # far past the interpreter's recursion limit, within server.max_body_bytes
    for body in (b"[" * depth + b"]" * depth, b'{"name": ' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"):
        with caplog.at_level(logging.INFO):
            r = await api.client.post(path, content=body, headers={**h, "content-type": "application/json"})
        assert _is_400(r, "body"), (r.status_code, r.text)
        assert "nested too deeply" in r.json()["error"]["message"]
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR or rec.exc_info]


async def test_client_gone_mid_body_is_one_quiet_line(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    """Straight ASGI: the body's first half arrives, then the client disconnects."""
    h, _ = await _setup(api)
    app = create_app(api.runtime)
    messages = [
        {"type": "http.request", "body": b'{"name": "ha', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(k.lower().encode(), v.encode()) for k, v in h.items()]
    headers += [(b"content-type", b"application/json"), (b"content-length", b"40"), (b"host", b"t")]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/studios",
        "raw_path": b"/v1/studios",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    with caplog.at_level(logging.DEBUG):
        await app(scope, receive, send)
    lines = [rec for rec in caplog.records if rec.name.startswith(("trax", "litestar", "uvicorn"))]
    assert not [rec for rec in lines if rec.levelno >= logging.ERROR or rec.exc_info], [r.getMessage() for r in lines]
    gone = [rec for rec in lines if "disconnected" in rec.getMessage()]
    assert len(gone) == 1 and gone[0].levelno <= logging.INFO
    assert (await api.client.get("/v1/studios", headers=h)).json()["data"][0]["name"] == "Main"


async def test_a_source_patch_takes_json_booleans_only(api: Api) -> None:
    """Litestar's lenient conversion would read ``0`` as ``false``; the documented type is a JSON boolean."""
    t = await api.tenant("acme")
    h = t.auth(await api.key(t))
    sid = (await api.client.post("/v1/studios", json={"name": "Main"}, headers=h)).json()["id"]
    _, asset, _ = await api.runtime.services.media.initiate_upload(
        t.operator, name="a.bin", content_type="application/octet-stream", size_bytes=4
    )
    body = {"name": "clip", "kind": "media", "mediaAssetId": asset.id}
    created = await api.client.post(f"/v1/studios/{sid}/sources", json=body, headers=h)
    assert created.status_code == 201, created.text
    url = f"/v1/studios/{sid}/sources/{created.json()['id']}"
    for body in ({"playing": 0}, {"loop": "true"}):
        r = await api.client.patch(url, json=body, headers=h)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["param"] == next(iter(body)), r.text
    assert (await api.client.patch(url, json={"name": "renamed"}, headers=h)).json()["name"] == "renamed"
