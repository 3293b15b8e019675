"""The one error envelope: framework errors, bad bodies, limits and crashes all look the same."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.api.conftest import Api
from trax.domain.scopes import SCOPES

pytestmark = pytest.mark.anyio


def assert_envelope(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert err["code"] == code
    assert err["requestId"] == r.headers["x-request-id"]
    assert isinstance(err["message"], str) and err["message"]
    for leak in ("Traceback", 'File "', "/work/", "sqlite", "litestar", "msgspec"):
        assert leak not in r.text
    return dict(err)


@pytest.fixture
async def h(api: Api) -> dict[str, str]:
    t = await api.tenant("acme")
    return t.auth(await api.key(t, SCOPES))


async def test_unknown_route_and_method(api: Api, h: dict[str, str]) -> None:
    assert_envelope(await api.client.get("/v1/nope"), 404, "not_found")
    assert_envelope(await api.client.get("/nope", headers=h), 404, "not_found")
    assert_envelope(await api.client.post("/v1/unknown", headers=h), 404, "not_found")
    assert_envelope(await api.client.get("/schema"), 404, "not_found")
    r = await api.client.put("/v1/studios", headers=h)
    assert_envelope(r, 405, "method_not_allowed")
    assert set(r.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    # 404/405 come before authentication
    assert_envelope(await api.client.delete("/v1/studios"), 405, "method_not_allowed")


async def test_options_allow_lists_every_method(api: Api) -> None:
    r = await api.client.options("/v1/studios")
    assert r.status_code == 204
    assert {"GET", "POST"} <= set(r.headers["allow"].replace(" ", "").split(","))
    r = await api.client.options("/v1/studios/studio_x")
    assert {"GET", "PATCH", "DELETE"} <= set(r.headers["allow"].replace(" ", "").split(","))


async def test_bad_bodies(api: Api, h: dict[str, str]) -> None:
    js = {**h, "content-type": "application/json"}
    e = assert_envelope(await api.client.post("/v1/studios", headers=js, content=b"{not json"), 400, "invalid_request")
    assert e["param"] == "body"
    assert_envelope(await api.client.post("/v1/studios", headers=js, content=b'{"name": "a"'), 400, "invalid_request")
    assert_envelope(await api.client.post("/v1/studios", headers=js, content=b""), 400, "invalid_request")
    assert_envelope(await api.client.post("/v1/studios", headers=js, content=b"[1]"), 400, "invalid_request")
    e = assert_envelope(
        await api.client.post("/v1/studios", headers=h, json={"name": "a", "colour": 1}), 400, "invalid_request"
    )
    assert e["param"] == "colour"
    e = assert_envelope(await api.client.post("/v1/studios", headers=h, json={"name": 5}), 400, "invalid_request")
    assert e["param"] == "name"
    e = assert_envelope(
        await api.client.post("/v1/studios", headers=h, json={"name": "x" * 101}), 400, "invalid_request"
    )
    assert e["param"] == "name"
    e = assert_envelope(
        await api.client.post("/v1/keys", headers=h, json={"name": "k", "scopes": ["root"]}), 400, "invalid_request"
    )
    assert e["param"].startswith("scopes")


async def test_wrong_content_type_is_415(api: Api, h: dict[str, str]) -> None:
    for ctype in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"):
        r = await api.client.post("/v1/studios", headers={**h, "content-type": ctype}, content=b'{"name":"a"}')
        assert_envelope(r, 415, "unsupported_media_type")
    r = await api.client.post(
        "/v1/studios", headers={**h, "content-type": "application/json; charset=utf-8"}, content=b'{"name":"a"}'
    )
    assert r.status_code == 201


async def test_body_over_limit_is_413(make_api: Any) -> None:
    async with make_api(server={"max_body_bytes": 2048}) as api:
        t = await api.tenant("acme")
        h = t.auth(await api.key(t, SCOPES))
        big = b'{"name": "' + b"x" * 4096 + b'"}'
        r = await api.client.post("/v1/studios", headers={**h, "content-type": "application/json"}, content=big)
        assert_envelope(r, 413, "payload_too_large")

        async def chunked() -> Any:
            yield b'{"name": "'
            for _ in range(10):
                yield b"x" * 1024
            yield b'"}'

        r = await api.client.post("/v1/studios", headers={**h, "content-type": "application/json"}, content=chunked())
        assert_envelope(r, 413, "payload_too_large")


async def test_unexpected_exception_is_500_logged_with_request_id(
    api: Api, h: dict[str, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom(*a: Any, **k: Any) -> Any:
        raise RuntimeError("secret internals /etc/passwd SELECT * FROM entities")

    monkeypatch.setattr(api.runtime.services.studios, "list", boom)
    with caplog.at_level(logging.ERROR, logger="trax.server"):
        r = await api.client.get("/v1/studios", headers={**h, "X-Request-Id": "trace-123"})
    e = assert_envelope(r, 500, "internal_error")
    assert e["requestId"] == "trace-123"
    assert "SELECT" not in r.text and "passwd" not in r.text
    assert any("trace-123" in rec.getMessage() for rec in caplog.records)


async def test_request_id_echoed_or_generated(api: Api, h: dict[str, str]) -> None:
    r = await api.client.get("/v1/studios", headers={**h, "X-Request-Id": "abc.DEF_1:2-3"})
    assert r.headers["x-request-id"] == "abc.DEF_1:2-3"
    for bad in ("has space", "x" * 129, "semi;colon", ""):
        r = await api.client.get("/v1/nope", headers={"X-Request-Id": bad})
        rid = r.headers["x-request-id"]
        assert rid != bad and rid.startswith("req_") and r.json()["error"]["requestId"] == rid
    r1, r2 = await api.client.get("/v1/health"), await api.client.get("/v1/health")
    assert r1.headers["x-request-id"] != r2.headers["x-request-id"]


async def test_secrets_never_echoed(api: Api) -> None:
    t = await api.tenant("acme")
    secret = await api.key(t, ["studios:read"])
    r = await api.client.get("/v1/keys", headers=t.auth(secret))
    assert secret not in r.text
    r = await api.client.get("/v1/studios", headers=t.auth(secret[:-2] + "zz"))
    assert r.status_code == 401 and secret[:-2] not in r.text


async def test_health_and_degraded(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    r = await api.client.get("/v1/health")
    body = r.json()
    assert r.status_code == 200 and body["status"] == "ok" and body["version"]
    doc = (await api.client.get("/v1/openapi.json")).json()
    assert body["apiVersion"] == doc["info"]["version"]

    from trax.domain.errors import Unavailable

    async def down() -> None:
        raise Unavailable("db down")

    monkeypatch.setattr(api.runtime.storage, "ping", down)
    r = await api.client.get("/v1/health")
    assert r.status_code == 503 and r.json()["status"] == "degraded"
    assert r.json()["version"] == body["version"]


async def test_storage_down_is_503_unavailable(api: Api, h: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from trax.domain.errors import Unavailable

    async def down(*a: Any, **k: Any) -> Any:
        raise Unavailable("connection refused to 10.0.0.1")

    monkeypatch.setattr(api.runtime.storage, "list", down)
    r = await api.client.get("/v1/studios", headers=h)
    assert_envelope(r, 503, "unavailable")
    assert int(r.headers["retry-after"]) >= 1
