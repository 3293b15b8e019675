"""The DTLS side of a WHIP/WHEP answer: which end takes the server role, and why a connection failed.

aiortc answers an ``a=setup:actpass`` offer as the DTLS *client* and offers only ECDHE-ECDSA cipher suites. A
client whose certificate is RSA (GStreamer's webrtcbin) then has no suite in common with it (its ServerHello
would need ECDHE-RSA), and the handshake fails. As the DTLS *server* (``a=setup:passive``, which RFC 8842 allows
an answerer), aiortc's ECDSA certificate picks the suite, and the client's RSA certificate only authenticates the
client (checked against the offer's fingerprint), which any TLS stack supports. Browsers accept either answer.
"""

from __future__ import annotations

from typing import Any


def prefer_dtls_server(pc: Any) -> None:
    """After ``setRemoteDescription(offer)``: answer ``a=setup:passive`` where the offer left the choice to us.

    aiortc keeps the choice in a private attribute (``"auto"`` after an ``actpass`` offer); an offer that fixed
    the roles (``active``/``passive``) has already set it, and is left alone.
    """
    for transceiver in pc.getTransceivers():
        transport = transceiver.receiver.transport
        if transport is not None and getattr(transport, "_role", None) == "auto":
            transport._set_role("server")


def connection_failure_reason(pc: Any, *, timed_out: bool = False) -> str:
    """What the source's error says: whether ICE found no path, or DTLS failed over a working one."""
    transports = [t.receiver.transport for t in pc.getTransceivers() if t.receiver.transport is not None]
    ice_ok = bool(transports) and all(t.transport.state in ("completed", "connected") for t in transports)
    if not ice_ok:
        what = "ICE found no network path to the client (check ingest.whip.host_candidates and ice_servers)"
    else:
        what = "the DTLS handshake failed (no cipher suite in common, or a certificate not matching the fingerprint)"
    when = "not established in time" if timed_out else "failed"
    return f"WebRTC connection {when}: {what}"
