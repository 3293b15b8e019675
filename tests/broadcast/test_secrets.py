"""Stream keys, SRT passphrases and stream ids, and URL user-info never leave trax: not in answers, events or logs."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tests.conftest import memory_settings
from trax.domain.events import Event
from trax.ports import free_port
from trax.runtime import Runtime
from trax.server.wire import destination_out, stream_status_out
from trax.services import Principal

pytestmark = pytest.mark.anyio

KEY = "sk-STREAMKEY-9f8e7d6c"
USERINFO = "broadcaster:USERPASS-5a4b"
PASSPHRASE = "PASSPHRASE-1234567890"
STREAMID = "STREAMID-abcdef"
SECRETS = (KEY, USERINFO, "USERPASS-5a4b", PASSPHRASE, STREAMID)


async def test_secrets_stay_out_of_answers_events_and_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = memory_settings(
        tmp_path,
        broadcast={
            "reconnect_min_seconds": 0.2,
            "reconnect_max_seconds": 0.5,
            "connect_timeout_seconds": 2.0,
            "recordings_dir": str(tmp_path / "r"),
            "media_cache_dir": str(tmp_path / "c"),
        },
    )
    events: list[Event] = []
    async with Runtime(settings) as rt:  # type: ignore[arg-type]

        async def collect(e: Event) -> None:
            events.append(e)

        rt.bus.subscribe(collect)
        acct = await rt.services.accounts.create("acme")
        op = Principal.operator(acct.id)
        studio = await rt.services.studios.create(op, name="s")
        dead_rtmp, dead_srt = free_port(), free_port()
        rtmp = await rt.services.destinations.create(
            op,
            studio.id,
            {
                "name": "r",
                "platform": "custom_rtmp",
                "rtmpUrl": f"rtmp://{USERINFO}@127.0.0.1:{dead_rtmp}/live",
                "streamKey": KEY,
            },
        )
        srt = await rt.services.destinations.create(
            op,
            studio.id,
            {
                "name": "s",
                "platform": "custom_srt",
                "srtUrl": f"srt://127.0.0.1:{dead_srt}?streamid={STREAMID}",
                "passphrase": PASSPHRASE,
            },
        )
        await rt.services.studios.go_live(op, studio.id)

        async def both_failed() -> None:
            while True:
                status = await rt.services.studios.stream_status(op, studio.id)
                if all(d.status.value == "error" for d in status.destinations):
                    return
                await asyncio.sleep(0.1)

        async with asyncio.timeout(30):
            await both_failed()
        answers = [
            destination_out(await rt.services.destinations.get(op, studio.id, rtmp.id)),
            destination_out(await rt.services.destinations.get(op, studio.id, srt.id)),
            stream_status_out(await rt.services.studios.stream_status(op, studio.id)),
        ]
        codes = {d.error.code for d in answers[2].destinations if d.error}
        assert codes <= {"connection_refused", "timeout", "auth_rejected", "stream_ended"}, codes
        await rt.services.studios.go_offline(op, studio.id)
    shown = [repr(a) for a in answers] + [repr(e) for e in events] + [repr(rtmp), repr(srt)]
    shown += [r.getMessage() + str(r.exc_info or "") for r in caplog.records]
    assert any(e.type == "destination.status_changed" for e in events)
    for text in shown:
        for secret in SECRETS:
            assert secret not in text, f"{secret[:8]}… leaked into: {text[:200]}"
