"""Command lines of the third-party clients, as a streamer would type them (docs/interop.md shows the same)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.interop.processes import decode_tail
from tests.interop.studio import obs_fields

FPS = 25
SECONDS = 20
"""Publishers run this long at most; a cell stops its publisher as soon as the reading side has its frames."""

FFMPEG_SOURCE = [
    "-re", "-f", "lavfi", "-i", f"testsrc=size=320x240:rate={FPS}",
    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
    "-t", str(SECONDS), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(FPS),
    "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
]  # fmt: skip

GST_VIDEO = [
    "videotestsrc", "is-live=true", f"num-buffers={FPS * SECONDS}", "!",
    f"video/x-raw,width=320,height=240,framerate={FPS}/1", "!",
    "x264enc", "tune=zerolatency", "speed-preset=ultrafast", f"key-int-max={FPS}", "!", "h264parse",
]  # fmt: skip
GST_AAC = [
    "audiotestsrc", "is-live=true", "!", "audio/x-raw,rate=48000,channels=1", "!", "voaacenc", "!", "aacparse",
]  # fmt: skip


def ffmpeg_publish(ffmpeg: str, protocol: str, creds: Mapping[str, Any]) -> list[str]:
    url = creds["urls"][protocol]
    fmt = "mpegts" if protocol == "srt" else "flv"
    return [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", *FFMPEG_SOURCE, "-f", fmt, url]


def ffmpeg_obs_publish(ffmpeg: str, protocol: str, creds: Mapping[str, Any]) -> list[str]:
    """OBS's way: a Server field (``rtmp://host:port/app``) and a Stream Key, sent as RTMP app and play path."""
    obs = obs_fields(creds, protocol)
    return [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", *FFMPEG_SOURCE,
        "-f", "flv", "-rtmp_app", obs.app, "-rtmp_playpath", obs.stream_key, obs.server,
    ]  # fmt: skip


def gst_rtmp_publish(gst: str, sink: str, protocol: str, creds: Mapping[str, Any]) -> list[str]:
    url = creds["urls"][protocol]
    if sink == "rtmpsink":
        target = [sink, f"location={url} live=1"]  # librtmp's option syntax: options after the URL
    else:
        target = [sink, f"location={url}"]
        if protocol == "rtmps":
            target.append("tls-validation-flags=0")  # the test certificate is self-signed
    return [
        gst, "-q", "-e", *GST_VIDEO, "!", "queue", "!", "mux.", *GST_AAC, "!", "queue", "!", "mux.",
        "flvmux", "name=mux", "streamable=true", "!", *target,
    ]  # fmt: skip


def srt_parts(url: str) -> tuple[str, str]:
    """``srt://host:port?streamid=ID`` -> (``srt://host:port``, ``ID``): GStreamer takes the streamid as a property."""
    base, _, query = url.partition("?")
    assert query.startswith("streamid="), url
    return base, query.removeprefix("streamid=")


def gst_srt_publish(gst: str, creds: Mapping[str, Any]) -> list[str]:
    uri, streamid = srt_parts(creds["urls"]["srt"])
    # alignment=7: seven 188-byte TS packets per buffer, so each fits one 1316-byte SRT payload
    return [
        gst, "-q", "-e", *GST_VIDEO, "!", "queue", "!", "mux.", *GST_AAC, "!", "queue", "!", "mux.",
        "mpegtsmux", "name=mux", "alignment=7", "!", "srtsink", f"uri={uri}", f"streamid={streamid}",
    ]  # fmt: skip


def slt_publish(ffmpeg: str, slt: str, creds: Mapping[str, Any]) -> list[str]:
    """ffmpeg makes MPEG-TS on stdout; srt-live-transmit sends it in 1316-byte chunks (7 TS packets)."""
    encoder = " ".join([ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", *FFMPEG_SOURCE, "-f", "mpegts", "-"])
    url = creds["urls"]["srt"]
    return ["bash", "-c", f"set -o pipefail; {encoder} | exec {slt} -q -chunk:1316 file://con '{url}'"]


WEBRTCBIN_WHIP = Path(__file__).parent.parent / "ingest" / "gst" / "webrtcbin_whip.py"


def webrtcbin_publish(python: str, creds: Mapping[str, Any]) -> list[str]:
    """GStreamer webrtcbin as a WHIP publisher: H.264 so RTMP/SRT readers get it as is, Opus audio.

    Debian 12's ``simple-whip-client`` aborts at start (it links libsoup 2, GStreamer's webrtc/nice plugins libsoup 3),
    so ``tests/ingest/gst/webrtcbin_whip.py`` drives the same element: webrtcbin does ICE, DTLS and RTP, the script
    only carries the SDP over HTTP as RFC 9725 says.
    """
    video = (
        f"videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate={FPS}/1 ! videoconvert ! queue ! "
        f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={FPS} ! "
        "video/x-h264,profile=constrained-baseline ! rtph264pay config-interval=-1 pt=96 ! queue ! "
        "application/x-rtp,media=video,encoding-name=H264,payload=96"
    )
    audio = (
        "audiotestsrc is-live=true ! audioconvert ! audioresample ! queue ! opusenc ! rtpopuspay pt=111 ! queue ! "
        "application/x-rtp,media=audio,encoding-name=OPUS,payload=111"
    )
    return [python, str(WEBRTCBIN_WHIP), creds["urls"]["whip"], creds["token"], video, audio]


def ffmpeg_rtmp_reference(ffmpeg: str, creds: Mapping[str, Any]) -> list[str]:
    """The publisher of the read cells: ffmpeg over plain RTMP (H.264 without B-frames, AAC)."""
    return ffmpeg_publish(ffmpeg, "rtmp", creds)


def gst_rtmp_read(gst_src: str, protocol: str, creds: Mapping[str, Any]) -> list[str]:
    url = creds["urls"][protocol]
    if gst_src == "rtmpsrc":
        head = [gst_src, f"location={url} live=1"]
    else:
        head = [gst_src, f"location={url}"]
        if protocol == "rtmps":
            head.append("tls-validation-flags=0")
    return decode_tail(head, "flvdemux")


def gst_srt_read(creds: Mapping[str, Any]) -> list[str]:
    uri, streamid = srt_parts(creds["urls"]["srt"])
    return decode_tail(["srtsrc", f"uri={uri}", f"streamid={streamid}"], "tsdemux")


def slt_read(slt: str, creds: Mapping[str, Any]) -> list[str]:
    """srt-live-transmit as an SRT caller writing what it receives to stdout (a file the test decodes)."""
    return [slt, "-q", creds["urls"]["srt"], "file://con"]


def rtmpdump_read(rtmpdump: str, protocol: str, creds: Mapping[str, Any]) -> list[str]:
    """rtmpdump saving the live stream as FLV on stdout (the file the test decodes)."""
    return [rtmpdump, "--live", "-r", creds["urls"][protocol], "-o", "-"]
