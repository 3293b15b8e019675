"""Envelope -> exception mapping and the retry policy, over a scripted HTTP exchange."""

from __future__ import annotations

import httpx
import pytest

from trax import AsyncClient, Client
from trax.domain import errors
from trax.domain.errors import ERRORS_BY_CODE


def envelope(status: int, code: str, *, headers: dict[str, str] | None = None, **extra: str) -> httpx.Response:
    body = {"error": {"code": code, "message": f"{code} happened", "requestId": "req_abc", **extra}}
    return httpx.Response(status, json=body, headers={"X-Request-Id": "req_abc", **(headers or {})})


@pytest.mark.anyio
@pytest.mark.parametrize("code", sorted(ERRORS_BY_CODE))
async def test_every_code_maps_to_its_class(code: str) -> None:
    cls = ERRORS_BY_CODE[code]

    def answer(request: httpx.Request) -> httpx.Response:
        return envelope(cls.status, code, param="name", requiredScope="studios:write")

    client = AsyncClient(
        "http://127.0.0.1:9", "sk_live_" + "k" * 30, transport=httpx.MockTransport(answer), max_retries=0
    )
    async with client as c:
        with pytest.raises(cls) as caught:
            await c.studios.get("studio_x")
    err = caught.value
    assert type(err) is cls and err.code == code
    assert err.request_id == "req_abc" and err.message == f"{code} happened"
    assert err.param == "name" and err.required_scope == "studios:write"


@pytest.mark.anyio
async def test_unknown_code_keeps_the_servers_words() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return envelope(422, "brand_new_code")

    async with AsyncClient("http://127.0.0.1:9", "sk_live_" + "k" * 30, transport=httpx.MockTransport(answer)) as c:
        with pytest.raises(errors.TraxError) as caught:
            await c.studios.get("studio_x")
    assert caught.value.code == "brand_new_code" and caught.value.status == 422


@pytest.mark.anyio
async def test_non_envelope_error_still_typed() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>bad gateway</html>")

    async with AsyncClient(
        "http://127.0.0.1:9", "sk_live_" + "k" * 30, transport=httpx.MockTransport(answer), max_retries=0
    ) as c:
        with pytest.raises(errors.Unavailable):
            await c.studios.get("studio_x")


def test_unavailable_is_retried_and_write_disabled_is_not() -> None:
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path == "/v1/studios/s1" and len(calls) < 3:
            return envelope(503, "unavailable", headers={"Retry-After": "0"})
        if request.url.path == "/v1/studios":
            return envelope(503, "write_disabled")
        return httpx.Response(200, json={"id": "s1", "name": "ok", "status": "offline"})

    with Client("http://127.0.0.1:9", "sk_live_" + "k" * 30, transport=httpx.MockTransport(answer)) as c:
        assert c.studios.get("s1").name == "ok"
        assert calls == ["/v1/studios/s1"] * 3 and c.transport.retries == 2
        with pytest.raises(errors.WriteDisabled):
            c.studios.create(name="x")
        assert calls.count("/v1/studios") == 1


def test_retries_are_bounded() -> None:
    calls: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return envelope(429, "rate_limited", headers={"Retry-After": "0"})

    client = Client("http://127.0.0.1:9", "sk_live_" + "k" * 30, transport=httpx.MockTransport(answer), max_retries=2)
    with client as c, pytest.raises(errors.RateLimited) as caught:
        c.studios.get("s1")
    assert len(calls) == 3 and caught.value.retry_after == 0


def test_the_api_key_goes_only_to_its_own_server() -> None:
    seen: dict[str, str | None] = {}

    def answer(request: httpx.Request) -> httpx.Response:
        seen[request.url.host + request.url.path] = request.headers.get("authorization")
        if request.url.path == "/v1/media/uploads":
            return httpx.Response(
                201,
                json={
                    "id": "upl_1",
                    "assetId": "asset_1",
                    "method": "PUT",
                    "url": "http://elsewhere.invalid/put?sig=1",
                    "headers": {"Content-Type": "video/mp4"},
                    "maxBytes": 3,
                },
            )
        return httpx.Response(200, json={"id": "asset_1", "name": "a.mp4", "status": "ready", "sizeBytes": 3})

    with Client("http://127.0.0.1:9", "sk_live_" + "k" * 30, transport=httpx.MockTransport(answer)) as c:
        asset = c.media.upload(b"abc", name="a.mp4", progress=False)
    assert asset.status == "ready"
    assert seen["127.0.0.1/v1/media/uploads"] == "Bearer sk_live_" + "k" * 30
    assert seen["elsewhere.invalid/put"] is None


def test_unreachable_server_retries_reads_only() -> None:
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        raise httpx.ConnectError("refused", request=request)

    client = Client("http://127.0.0.1:9", "sk_live_" + "k" * 30, transport=httpx.MockTransport(answer), max_retries=1)
    with client as c:
        with pytest.raises(errors.Unavailable) as read:
            c.studios.get("s1")
        assert calls == ["GET", "GET"] and isinstance(read.value.__cause__, httpx.ConnectError)
        calls.clear()
        with pytest.raises(errors.Unavailable):
            c.studios.create(name="x")
        assert calls == ["POST"]
