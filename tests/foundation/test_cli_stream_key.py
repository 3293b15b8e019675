"""``trax sources stream-key`` and ``trax tokens mint``: the OBS server/streamKey pair, the key shown once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import trax
from trax.cli import main


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "trax.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "storage": {"backend": "sqlite", "options": {"path": str(tmp_path / "t.db")}},
                "security": {"secret_key_file": str(tmp_path / "secret.key")},
                "ingest": {"host": "127.0.0.1", "rtmp": {"enabled": True, "port": 19351}, "srt": {"enabled": True}},
            }
        )
    )
    return str(path)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_stream_key_command_prints_the_key_once_with_obs_fields(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with trax.connect(config, account="acme") as p:
        cam = p.studios.create(name="s").sources.create(name="cam", kind="rtmp").result()
    rc, out, err = _run(capsys, "sources", "stream-key", cam.id, "--account", "acme", "-c", config, "--json")
    assert rc == 0, err
    first = json.loads(out)
    key = first["streamKey"]
    assert first["obs"]["rtmp"] == {
        "server": "rtmp://127.0.0.1:19351/inputs",
        "streamKey": f"{cam.ingest['path'].split('/', 1)[1]}?user={key}&pass={key}",
    }
    assert first["urls"]["srt"].endswith(f"streamid=publish:{cam.ingest['path']}:{key}:{key}")
    rc, out, _ = _run(capsys, "sources", "stream-key", cam.id, "--account", "acme", "-c", config)
    assert rc == 0 and "rtmp server:" in out and key not in out  # rotated: a new key, the old one gone
    with trax.connect(config, account="acme") as p:
        assert p.run(p.runtime.services.sources.by_stream_key(key)) is None


def test_stream_key_command_on_an_unknown_source_is_a_clear_error(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with trax.connect(config, account="acme"):
        pass
    rc, _, err = _run(capsys, "sources", "stream-key", "src_nope", "--account", "acme", "-c", config)
    assert rc == 1 and "not_found" in err and "Traceback" not in err


def test_a_media_source_has_no_stream_key(config: str) -> None:
    from trax.client.errors import InvalidRequest

    with trax.connect(config, account="acme") as p:
        asset = p.media.upload(b"\0" * 1024, name="clip.mp4", progress=False).result()
        clip = p.studios.create(name="s").sources.create(name="clip", kind="media", media_asset_id=asset.id).result()
        with pytest.raises(InvalidRequest, match="no stream key"):
            clip.stream_key().result()


def test_tokens_mint_prints_the_obs_pair(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    with trax.connect(config, account="acme") as p:
        cam = p.studios.create(name="s").sources.create(name="cam", kind="rtmp").result()
    path = cam.ingest["path"]
    rc, out, err = _run(capsys, "tokens", "mint", "--path", path, "--action", "publish", "-c", config, "--json")
    assert rc == 0, err
    minted = json.loads(out)
    pair = minted["obs"]["rtmp"]
    assert f"{pair['server']}/{pair['streamKey']}" == minted["urls"]["rtmp"]
    assert minted["token"] in pair["streamKey"]


def test_in_process_sdk_stream_key_matches_the_wire_answer(config: str) -> None:
    with trax.connect(config, account="acme") as p:
        cam = p.studios.create(name="s").sources.create(name="cam", kind="rtmp").result()
        first = cam.stream_key().result()
        second = cam.stream_key().result()
        assert first.stream_key != second.stream_key and second.source_id == cam.id
        assert second.obs["rtmp"]["server"] == "rtmp://127.0.0.1:19351/inputs"
        assert second.stream_key not in repr(second) and second.stream_key not in second._repr_html_()
        assert p.run(p.runtime.services.sources.by_stream_key(first.stream_key)) is None
        assert p.run(p.runtime.services.sources.by_stream_key(second.stream_key)).id == cam.id
