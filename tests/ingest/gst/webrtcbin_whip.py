"""A WHIP publisher on GStreamer's webrtcbin, driven through ctypes (no PyGObject needed).

Debian's ``simple-whip-client`` cannot run on bookworm (it links libsoup2; GStreamer 1.22's webrtc and nice
plugins link libsoup3, and both in one process abort), so this stands in for it: webrtcbin makes the offer,
gathers ICE, does DTLS and sends; this script only carries the SDP over HTTP (RFC 9725, candidates in the offer,
like ``whip-client -n``). Usage: ``python webrtcbin_whip.py URL TOKEN VIDEO_PIPELINE [AUDIO_PIPELINE]``; runs until
SIGTERM, then DELETEs its session. Prints ``status <code>`` after the POST.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from ctypes import POINTER, byref, c_char_p, c_int, c_uint, c_void_p

gst = ctypes.CDLL("libgstreamer-1.0.so.0")
gobject = ctypes.CDLL("libgobject-2.0.so.0")
sdp = ctypes.CDLL("libgstsdp-1.0.so.0")
webrtc = ctypes.CDLL("libgstwebrtc-1.0.so.0")


class SessionDescription(ctypes.Structure):
    _fields_ = [("type", c_int), ("sdp", c_void_p)]


gst.gst_init.argtypes = [c_void_p, c_void_p]
gst.gst_parse_launch.restype = c_void_p
gst.gst_parse_launch.argtypes = [c_char_p, POINTER(c_void_p)]
gst.gst_bin_get_by_name.restype = c_void_p
gst.gst_bin_get_by_name.argtypes = [c_void_p, c_char_p]
gst.gst_element_set_state.argtypes = [c_void_p, c_int]
gst.gst_promise_new.restype = c_void_p
gst.gst_promise_wait.argtypes = [c_void_p]
gst.gst_promise_get_reply.restype = c_void_p
gst.gst_promise_get_reply.argtypes = [c_void_p]
gst.gst_structure_get_value.restype = c_void_p
gst.gst_structure_get_value.argtypes = [c_void_p, c_char_p]
gobject.g_value_get_boxed.restype = c_void_p
gobject.g_value_get_boxed.argtypes = [c_void_p]
gobject.g_signal_emit_by_name.restype = None
sdp.gst_sdp_message_as_text.restype = c_char_p
sdp.gst_sdp_message_as_text.argtypes = [c_void_p]
sdp.gst_sdp_message_new_from_text.argtypes = [c_char_p, POINTER(c_void_p)]
webrtc.gst_webrtc_session_description_new.restype = c_void_p
webrtc.gst_webrtc_session_description_new.argtypes = [c_int, c_void_p]

PLAYING, NULL_STATE = 4, 1
SDP_ANSWER = 3  # GstWebRTCSDPType: OFFER 1, PRANSWER 2, ANSWER 3
GATHERING_COMPLETE = 2


def emit(element: int, name: bytes, *args: int | None) -> None:
    gobject.g_signal_emit_by_name(c_void_p(element), c_char_p(name), *[c_void_p(a) for a in args])


def gathering_state(element: int) -> int:
    state = c_uint(0)
    gobject.g_object_get(c_void_p(element), c_char_p(b"ice-gathering-state"), byref(state), c_void_p(None))
    return state.value


def local_sdp(element: int) -> str:
    desc = c_void_p()
    gobject.g_object_get(c_void_p(element), c_char_p(b"local-description"), byref(desc), c_void_p(None))
    assert desc.value, "webrtcbin has no local description"
    text = sdp.gst_sdp_message_as_text(ctypes.cast(desc, POINTER(SessionDescription)).contents.sdp)
    return text.decode()


def main(url: str, token: str, video: str, audio: str | None) -> int:
    gst.gst_init(None, None)
    desc = f"webrtcbin name=w bundle-policy=max-bundle {video} ! w."
    if audio:
        desc += f" {audio} ! w."
    err = c_void_p()
    pipeline = gst.gst_parse_launch(desc.encode(), byref(err))
    assert pipeline and not err.value, "the pipeline does not parse"
    w = gst.gst_bin_get_by_name(c_void_p(pipeline), b"w")
    gst.gst_element_set_state(c_void_p(pipeline), PLAYING)
    time.sleep(0.5)  # the sink pads' caps make the transceivers
    promise = gst.gst_promise_new()
    emit(w, b"create-offer", None, promise)
    gst.gst_promise_wait(c_void_p(promise))
    reply = gst.gst_promise_get_reply(c_void_p(promise))
    offer = gobject.g_value_get_boxed(c_void_p(gst.gst_structure_get_value(c_void_p(reply), b"offer")))
    emit(w, b"set-local-description", offer, None)
    deadline = time.monotonic() + 10
    while gathering_state(w) != GATHERING_COMPLETE and time.monotonic() < deadline:
        time.sleep(0.05)
    request = urllib.request.Request(
        url,
        data=local_sdp(w).encode(),
        method="POST",
        headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            status, answer, location = resp.status, resp.read().decode(), resp.headers["Location"]
    except urllib.error.HTTPError as exc:
        print(f"status {exc.code} {exc.read().decode()}", flush=True)
        return 1
    print(f"status {status}", flush=True)
    msg = c_void_p()
    sdp.gst_sdp_message_new_from_text(answer.encode(), byref(msg))
    emit(w, b"set-remote-description", webrtc.gst_webrtc_session_description_new(SDP_ANSWER, msg), None)
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    while not stop[0]:
        time.sleep(0.1)
    delete = urllib.request.Request(
        urllib.parse.urljoin(url, location), method="DELETE", headers={"Authorization": f"Bearer {token}"}
    )
    with contextlib.suppress(OSError):
        urllib.request.urlopen(delete, timeout=5).close()
    gst.gst_element_set_state(c_void_p(pipeline), NULL_STATE)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None))
