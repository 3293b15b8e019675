"""The in-process transport answers in the same wire shape as a real `trax serve`."""

from __future__ import annotations

from typing import Any

import pytest

import trax
from tests.sdk.conftest import Remote
from tests.sdk.test_inprocess import memory_config
from trax.client.api import Api


def shape(value: Any) -> Any:
    """Keys (recursively) and JSON types, not values."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


async def script(api: Api) -> dict[str, Any]:
    """The same calls through either transport; the raw wire answers."""
    t = api.transport
    out: dict[str, Any] = {}
    studio = await t.request("POST", "/v1/studios", json={"name": "parity", "description": "d"})
    sid = studio["id"]
    out["studio"] = studio
    out["source"] = await t.request("POST", f"/v1/studios/{sid}/sources", json={"name": "cam", "kind": "rtmp"})
    out["destination"] = await t.request(
        "POST",
        f"/v1/studios/{sid}/destinations",
        json={"name": "d", "platform": "custom_rtmp", "rtmpUrl": "rtmp://h/app", "streamKey": "key-123456"},
    )
    out["live"] = await t.request("POST", f"/v1/studios/{sid}/go-live")
    out["message"] = await t.request("POST", f"/v1/studios/{sid}/chat/messages", json={"text": "hi"})
    out["key"] = await t.request("POST", "/v1/keys", json={"name": "k", "scopes": ["studios:read"]})
    upload = await t.request(
        "POST", "/v1/media/uploads", json={"name": "a.bin", "contentType": "application/octet-stream", "sizeBytes": 3}
    )
    out["upload"] = upload
    out["asset"] = await t.request("GET", f"/v1/media/{upload['assetId']}")
    out["sources"] = await t.request("GET", f"/v1/studios/{sid}/sources", params={"limit": 1})
    out["token"] = await t.request(
        "POST", f"/v1/studios/{sid}/sources/{out['source']['id']}/session-tokens", json={"action": "publish"}
    )
    await t.request("POST", f"/v1/studios/{sid}/go-offline")
    return out


@pytest.fixture(scope="module")
def both(remote: Remote) -> tuple[dict[str, Any], dict[str, Any]]:
    with trax.Client(remote.url, remote.key) as c:
        served = c.api.run(script, c.api).result()
    with trax.connect(memory_config(), account="acme") as p:
        local = p.api.run(script, p.api).result()
    return served, local


@pytest.mark.parametrize(
    "what", ["studio", "source", "destination", "live", "message", "key", "upload", "asset", "sources"]
)
def test_same_shape(both: tuple[dict[str, Any], dict[str, Any]], what: str) -> None:
    served, local = both
    assert shape(local[what]) == shape(served[what])


def test_same_credentials_shape(both: tuple[dict[str, Any], dict[str, Any]]) -> None:
    served, local = both
    # which URLs appear depends on the transports each deployment enables
    assert set(local["token"]) == set(served["token"])
