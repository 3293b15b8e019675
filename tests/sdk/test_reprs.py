"""Notebook display: escaped HTML, masked secrets, capped sizes, reprs that never raise."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

import trax
from tests.sdk.test_inprocess import memory_config
from trax import display
from trax.client import models
from trax.notebook import Platform, StatusHistory

SCRIPT = "<script>alert('x')</script>"


@pytest.fixture
def p() -> Iterator[Platform]:
    platform = trax.connect(memory_config(), account="acme")
    try:
        yield platform
    finally:
        platform.close()


def renderings(obj: Any) -> list[str]:
    out = [repr(obj), str(obj)]
    html = getattr(obj, "_repr_html_", None)
    if html is not None:
        out.append(html() or "")
    return out


def test_html_escapes_a_studio_named_script(p: Platform) -> None:
    studio = p.studios.create(name=SCRIPT, description='"><img src=x onerror=alert(1)>')
    for html in (studio._repr_html_(), p.studios.list()._repr_html_(), studio.result()._repr_html_()):
        assert "<script>" not in html and "<img" not in html
        assert "&lt;script&gt;" in html
    assert SCRIPT in repr(studio)  # the text repr shows the name as it is


def test_no_secret_in_any_repr(p: Platform) -> None:
    key = p.keys.create(name="ci", scopes=["studios:read"])
    secret = key.secret
    assert secret
    studio = p.studios.create(name="s")
    src = studio.sources.create(kind="rtmp")
    creds = p.tokens.mint(source=src.result())
    dst = studio.destinations.create(
        name="d",
        platform="custom_rtmp",
        rtmp_url="rtmp://user:hunter2pw@example.invalid/live",
        stream_key="streamkey-9876",
    )
    rotated = key.rotate()
    upload = p.media.create_upload("a.mp4", "video/mp4", 10)
    token_in_url = upload.url.split("token=", 1)[1]
    secrets = [secret, rotated.secret, creds.token, "streamkey-9876", "hunter2pw", token_in_url]
    assert all(secrets)
    objects = [key, rotated, creds, dst, upload, studio.destinations.list(), p.keys.list(), p, studio.stream_status()]
    for obj in objects:
        for text in renderings(obj):
            for s in secrets:
                assert s not in text, (type(obj), s[:6])
    assert "sk_live_" in repr(key)  # the public prefix stays visible
    # URLs in credentials embed the token: the URL is shown with the token masked
    fake = models.IngestCredentials.from_wire(
        {
            "token": "tok-abcdef123456",
            "action": "publish",
            "path": "inputs/x",
            "urls": {
                "srt": "srt://h:1?streamid=publish:inputs/x:tok-abcdef123456",
                "whip": "http://h/whip?token=tok-abcdef123456",
            },
        }
    )
    for text in renderings(fake):
        assert "tok-abcdef123456" not in text


def test_long_lists_are_capped(p: Platform) -> None:
    studio = p.studios.create(name="many")
    for i in range(display.MAX_ROWS + 15):
        studio.chat.send(f"message {i}")
    html = studio.chat.list(limit=200)._repr_html_()
    assert html.count("<tr>") <= display.MAX_ROWS + 2  # header + rows + "more" footer
    assert "message 0" in html and f"message {display.MAX_ROWS + 14}" not in html
    assert "iterate for all" in html
    text = repr(studio.chat.list())
    assert len(text.splitlines()) <= display.MAX_ROWS + 3
    long = p.studios.create(name="y" * 100, description="z" * 1000)
    assert "z" * 200 not in long._repr_html_() and "z" * 200 not in repr(long)


def test_stream_status_caps_sources() -> None:
    status = models.StreamStatus.from_wire(
        {
            "studioId": "studio_1",
            "status": "live",
            "sources": [{"id": f"src_{i}", "status": "live"} for i in range(300)],
        }
    )
    html = status._repr_html_()
    assert "src_0" in html and "src_299" not in html and "278 more" in html
    assert html.count("<tr>") <= display.MAX_ROWS


def test_reprs_never_raise() -> None:
    broken = models.Studio.from_wire({"id": 5, "name": ["not", "text"], "createdAt": "yesterday", "status": None})
    for text in renderings(broken):
        assert isinstance(text, str)

    class Exploding(models.Studio):
        def _rows(self) -> list[tuple[str, str]]:
            raise ValueError("boom")

    boom = Exploding.from_wire({"id": "x"})
    assert "display failed" in boom._repr_html_() and "Exploding" in repr(boom)


def test_failed_and_pending_calls_render(p: Platform) -> None:
    import concurrent.futures

    from trax.client.bridge import Call

    pending: concurrent.futures.Future[Any] = concurrent.futures.Future()
    call = Call(pending, p._thread)
    assert "pending" in repr(call) and call._repr_html_() is None
    pending.set_exception(trax.TraxError("nope"))
    assert "failed" in repr(call)


def test_pager_that_cannot_fetch_still_renders(p: Platform) -> None:
    pager = p.studios.list()
    p.close()
    assert isinstance(repr(pager), str) and isinstance(pager._repr_html_(), str)


def test_status_history_plots() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    history = StatusHistory("studio_1")
    for i, s in enumerate(["idle", "connecting", "live", "live"]):
        st = models.StreamStatus.from_wire(
            {"studioId": "studio_1", "status": "live", "sources": [{"id": "src_1", "status": s}]}
        )
        history.samples.append((t0 + timedelta(seconds=i), st))
    ax = history.plot()
    ys = list(ax.lines[0].get_ydata())
    assert ys == [0, 1, 2, 2]
    assert re.search(r"4 sample", history._repr_html_())
