"""Uploads through the signed URL, ingest session tokens, and the JWKS they verify with."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.api.conftest import Api

pytestmark = pytest.mark.anyio


async def _start(api: Api, h: dict[str, str], data: bytes, sha: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "clip.mp4", "contentType": "video/mp4", "sizeBytes": len(data)}
    if sha:
        body["sha256"] = sha
    r = await api.client.post("/v1/media/uploads", headers=h, json=body)
    assert r.status_code == 201, r.text
    up: dict[str, Any] = r.json()
    assert up["method"] == "PUT" and up["maxBytes"] == len(data) and up["expiresAt"].endswith("Z")
    return up


def _local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def test_upload_roundtrip(api: Api) -> None:
    t = await api.tenant("acme")
    h = t.auth(await api.key(t, ["media:write", "media:read"]))
    data = b"\x00\x01video-bytes" * 1000
    up = await _start(api, h, data, hashlib.sha256(data).hexdigest())
    asset = (await api.client.get(f"/v1/media/{up['assetId']}", headers=h)).json()
    assert asset["status"] == "pending"
    # no API key: the signed URL authenticates
    r = await api.client.put(_local(up["url"]), content=data, headers=up["headers"])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ready" and r.json()["sha256"] == hashlib.sha256(data).hexdigest()
    assert (await api.client.get(f"/v1/media/{up['assetId']}", headers=h)).json()["status"] == "ready"
    r = await api.client.put(_local(up["url"]), content=data)
    assert r.status_code == 409


async def test_upload_rejections(api: Api) -> None:
    t = await api.tenant("acme")
    h = t.auth(await api.key(t, ["media:write", "media:read"]))
    data = b"abcdef"
    up = await _start(api, h, data, hashlib.sha256(b"other").hexdigest())
    r = await api.client.put(_local(up["url"]), content=data)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"
    up2 = await _start(api, h, data)
    r = await api.client.put(_local(up2["url"]), content=data + b"more")
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    r = await api.client.put(_local(up2["url"]), content=data[:3])
    assert r.status_code == 400
    path = urlsplit(up2["url"]).path
    for q in ("", "?token=", "?token=forged", f"?token={urlsplit(up['url']).query[6:]}"):
        r = await api.client.put(path + q, content=data)
        assert r.status_code == 401, q
        assert r.json()["error"]["code"] == "unauthorized"
    # the token is not an API key either
    r = await api.client.get("/v1/media", headers={"Authorization": "Bearer " + urlsplit(up2["url"]).query[6:]})
    assert r.status_code == 401
    r = await api.client.post(
        "/v1/media/uploads", headers=h, json={"name": "x", "contentType": "application/x-evil", "sizeBytes": 1}
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "contentType"


async def test_upload_url_uses_public_url(make_api: Any) -> None:
    async with make_api(server={"public_url": "https://api.example.test/"}) as api:
        t = await api.tenant("acme")
        h = t.auth(await api.key(t, ["media:write"]))
        up = await _start(api, h, b"abc")
        assert up["url"].startswith(f"https://api.example.test/v1/uploads/{up['id']}?token=")


async def test_session_token_and_jwks(api: Api) -> None:
    t = await api.tenant("acme")
    h = t.auth(await api.key(t, ["sources:write", "sources:read", "studios:write"]))
    studio = (await api.client.post("/v1/studios", headers=h, json={"name": "S"})).json()
    src = (
        await api.client.post(f"/v1/studios/{studio['id']}/sources", headers=h, json={"name": "c", "kind": "srt"})
    ).json()
    url = f"/v1/studios/{studio['id']}/sources/{src['id']}/session-tokens"
    r = await api.client.post(url, headers=h)
    assert r.status_code == 201, r.text
    creds = r.json()
    assert creds["action"] == "publish" and creds["path"] == src["ingest"]["path"] and creds["expiresAt"].endswith("Z")
    claims = await api.runtime.media_tokens.verify(  # type: ignore[attr-defined]
        creds["token"], path=src["ingest"]["path"], action="publish", audiences=["ingest"]
    )
    assert claims["path"] == src["ingest"]["path"]
    r = await api.client.post(url, headers=h, json={"action": "read", "ttlSeconds": 60})
    assert r.status_code == 201 and r.json()["action"] == "read"
    for bad in ({"action": "delete"}, {"ttlSeconds": 0}, {"ttlSeconds": 10**9}, {"x": 1}):
        r = await api.client.post(url, headers=h, json=bad)
        assert r.status_code == 400, (bad, r.text)
    jwks = (await api.client.get("/.well-known/jwks.json")).json()
    assert jwks["keys"] and all("d" not in k for k in jwks["keys"])


async def test_session_tokens_can_be_turned_off(make_api: Any) -> None:
    async with make_api(public_api={"write_enabled": True, "session_tokens_enabled": False}) as api:
        t = await api.tenant("acme")
        h = t.auth(await api.key(t, ["sources:write", "studios:write"]))
        studio = (await api.client.post("/v1/studios", headers=h, json={"name": "S"})).json()
        src = (
            await api.client.post(f"/v1/studios/{studio['id']}/sources", headers=h, json={"name": "c", "kind": "srt"})
        ).json()
        r = await api.client.post(f"/v1/studios/{studio['id']}/sources/{src['id']}/session-tokens", headers=h)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        doc = (await api.client.get("/v1/openapi.json")).json()
        assert not any("session-tokens" in p for p in doc["paths"])


async def test_go_live_idempotent_and_delete_live_conflict(api: Api) -> None:
    t = await api.tenant("acme")
    h = t.auth(await api.key(t, ["studios:write", "studios:read", "stream:write", "stream:read"]))
    sid = (await api.client.post("/v1/studios", headers=h, json={"name": "S"})).json()["id"]
    r = await api.client.post(f"/v1/studios/{sid}/go-live", headers=h)
    assert r.status_code == 202 and r.json()["status"] == "live" and r.json()["liveSince"].endswith("Z")
    r = await api.client.post(f"/v1/studios/{sid}/go-live", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "live"
    r = await api.client.delete(f"/v1/studios/{sid}", headers=h)
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    assert (await api.client.post(f"/v1/studios/{sid}/go-offline", headers=h)).status_code == 202
    assert (await api.client.post(f"/v1/studios/{sid}/go-offline", headers=h)).status_code == 200
    assert (await api.client.delete(f"/v1/studios/{sid}", headers=h)).status_code == 204
    assert (await api.client.get(f"/v1/studios/{sid}", headers=h)).status_code == 404


async def test_patch_is_partial_and_null_clears(api: Api) -> None:
    t = await api.tenant("acme")
    h = t.auth(await api.key(t, ["studios:write", "studios:read", "destinations:write", "destinations:read"]))
    s = (await api.client.post("/v1/studios", headers=h, json={"name": "S", "description": "d"})).json()
    assert s["description"] == "d" and s["createdAt"].endswith("Z") and len(s["createdAt"]) == 24
    r = await api.client.patch(f"/v1/studios/{s['id']}", headers=h, json={"name": "T"})
    assert r.json()["name"] == "T" and r.json()["description"] == "d"
    r = await api.client.patch(f"/v1/studios/{s['id']}", headers=h, json={"description": None})
    assert r.json()["name"] == "T" and "description" not in r.json()
    d = await api.client.post(
        f"/v1/studios/{s['id']}/destinations",
        headers=h,
        json={
            "name": "X",
            "platform": "custom_rtmp",
            "rtmpUrl": "rtmp://user:pw@h.example/app",
            "streamKey": "sekrit-9876",
        },
    )
    assert d.status_code == 201 and d.headers["location"].endswith(d.json()["id"])
    body = d.json()
    assert body["rtmpUrl"] == "rtmp://h.example/app" and body["streamKeyHint"] == "9876"
    assert "sekrit" not in d.text and "pw@" not in d.text


async def test_announced_size_over_cap_is_400(make_api: Any) -> None:
    async with make_api(media={"max_upload_bytes": 100}) as api:
        t = await api.tenant("acme")
        h = t.auth(await api.key(t, ["media:write"]))
        body = {"name": "big", "contentType": "video/mp4", "sizeBytes": 101}
        r = await api.client.post("/v1/media/uploads", headers=h, json=body)
        assert r.status_code == 400 and r.json()["error"]["param"] == "sizeBytes"
        assert (
            await api.client.post("/v1/media/uploads", headers=h, json={**body, "sizeBytes": 100})
        ).status_code == 201
