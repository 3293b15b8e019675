from __future__ import annotations

from trax.redaction import scrub


def test_scrub_removes_userinfo_and_key_secrets_only() -> None:
    assert scrub("rtmp://alice:pw@live.example/app") == "rtmp://***@live.example/app"
    assert (
        scrub("redis://:pw@cache:6379/0 and postgresql://u@db/x")
        == "redis://***@cache:6379/0 and postgresql://***@db/x"
    )
    assert scrub("key sk_live_AbC-12_x failed") == "key sk_live_*** failed"
    assert scrub("http://host/path?q=a@b") == "http://host/path?q=a@b"
    assert scrub("no secrets here: /var/lib/trax.db") == "no secrets here: /var/lib/trax.db"
