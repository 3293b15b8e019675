"""A Source's status reason is in the API: a live publisher whose video never had a keyframe says ``no_keyframes``."""

from __future__ import annotations

import asyncio
from fractions import Fraction
from typing import Any

import pytest

from trax.ingest.media import Packet, Track

pytestmark = pytest.mark.anyio

VIDEO = Track(0, "video", "h264", Fraction(1, 90000))


async def test_no_keyframes_is_visible_on_the_source(make_api: Any) -> None:
    async with make_api(ingest={"keyframe_warning_seconds": 0.3}) as api:
        tenant = await api.tenant("acme")
        auth = tenant.auth(await api.key(tenant))
        studio = (await api.client.post("/v1/studios", json={"name": "s"}, headers=auth)).json()
        src = (
            await api.client.post(
                f"/v1/studios/{studio['id']}/sources", json={"name": "cam", "kind": "srt"}, headers=auth
            )
        ).json()
        url = f"/v1/studios/{studio['id']}/sources/{src['id']}"
        path = src["ingest"]["path"]
        pub = await api.runtime.hub.open_publisher(path, "srt", [VIDEO], takeover=True)

        async def source() -> dict[str, Any]:
            r = await api.client.get(url, headers=auth)
            assert r.status_code == 200
            body: dict[str, Any] = r.json()
            return body

        n = 0
        async with asyncio.timeout(10):
            while (body := await source()).get("statusReason") is None:
                pub.send(Packet(0, b"\x00\x00\x01\x41", n * 3600, n * 3600, False))
                n += 1
                await asyncio.sleep(0.04)
        assert body["status"] == "live" and body["statusReason"] == "no_keyframes"
        # the producer's screen, stream-status, says it too
        status = (await api.client.get(f"/v1/studios/{studio['id']}/stream-status", headers=auth)).json()
        entry = next(s for s in status["sources"] if s["id"] == src["id"])
        assert entry["status"] == "live" and entry["reason"] == "no_keyframes"
        pub.send(Packet(0, b"\x00\x00\x01\x65", n * 3600, n * 3600, True))
        async with asyncio.timeout(10):
            # cleared by the first keyframe
            while (body := await source()).get("statusReason") is not None:  # noqa: ASYNC110 - polls the API
                await asyncio.sleep(0.05)
        assert body["status"] == "live"
        await pub.close()
