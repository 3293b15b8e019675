"""WHIP publish and WHEP play sessions: one aiortc peer connection each, joined through the hub."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trax.domain.errors import Conflict, InvalidRequest, NotFound, Unavailable
from trax.ingest.hub import PathHub, Publisher, Reader
from trax.ingest.media import (
    OPUS_TIME_BASE,
    RTP_VIDEO_TIME_BASE,
    H264ParameterSets,
    Packet,
    Track,
    vp8_is_keyframe,
)
from trax.ingest.whip.aac import OpusToAac
from trax.ingest.whip.dtls import connection_failure_reason, prefer_dtls_server
from trax.ingest.whip.ice import rtc_configuration
from trax.ingest.whip.keyframes import KeyframeRequester
from trax.ingest.whip.options import WhipOptions
from trax.ingest.whip.quota import SessionQuota
from trax.ingest.whip.rtc import HubTrack, tap_receiver
from trax.ingest.whip.transcode import Transcoders

log = logging.getLogger(__name__)

MIME_TO_CODEC = {"video/h264": "h264", "video/vp8": "vp8", "audio/opus": "opus"}
CODEC_TO_MIME = {v: k for k, v in MIME_TO_CODEC.items()}
MAX_MEDIA_SECTIONS = 8


def _nothing() -> None:
    return None


def _webrtc_target(track: Track, offered: set[str], reordered: bool) -> str | None:
    """The codec a viewer gets ``track`` in: as published when it can, else one it offered."""
    if track.kind == "audio":
        return "opus" if "opus" in offered else None
    if track.codec in offered and track.codec in ("h264", "vp8") and not (track.codec == "h264" and reordered):
        return track.codec
    return next((c for c in ("h264", "vp8") if c in offered), None)


def credential_digest(credential: str) -> bytes:
    return hashlib.sha256(credential.encode()).digest()


@dataclass(eq=False)
class Session:
    id: str
    kind: str  # "whip" | "whep"
    path: str
    pc: Any = field(repr=False)
    credential: bytes = field(repr=False)
    etag: str
    created_at: float = field(default_factory=time.monotonic)
    publisher: Publisher | None = field(default=None, repr=False)
    readers: list[Reader] = field(default_factory=list, repr=False)
    tracks: list[HubTrack] = field(default_factory=list, repr=False)
    first_packet_at: float | None = None
    closed: bool = False
    release_quota: Callable[[], None] = field(default=lambda: None, repr=False)
    connect_deadline: asyncio.TimerHandle | None = field(default=None, repr=False)
    resource_key: bytes | None = field(default=None, repr=False)
    forget_source: Callable[[], None] = field(default=_nothing, repr=False)
    keyframes: KeyframeRequester | None = field(default=None, repr=False)
    """Unregisters a WHEP session from its source publisher's close callbacks."""
    """Digest of the key in the session URL, for a client that authenticated by URL (``?access_token=``)."""

    def owns(self, credential: str | None) -> bool:
        if credential is None:
            return False
        digest = credential_digest(credential)
        if self.resource_key is not None and hmac.compare_digest(digest, self.resource_key):
            return True
        return hmac.compare_digest(digest, self.credential)

    def issue_resource_key(self) -> str:
        """A key for this session's URL only: a client that put its token in the URL keeps authenticating by URL
        (RFC 9725 clients DELETE the Location as given), without the media token being echoed back."""
        key = secrets.token_urlsafe(24)
        self.resource_key = credential_digest(key)
        return key


def _offered_codecs(sdp: str) -> set[str]:
    """Codec names (lower case) in the offer's ``a=rtpmap`` lines."""
    out = set()
    for line in sdp.replace("\r\n", "\n").split("\n"):
        if line.startswith("a=rtpmap:"):
            _, _, rest = line.partition(" ")
            out.add(rest.split("/", 1)[0].strip().lower())
    return out


def _offer_kinds(sdp: str) -> set[str]:
    """Cheap checks before aiortc sees the text (its own parse errors become 400 too); the media kinds offered.

    Transceivers are made only for offered kinds: aiortc cannot answer with a
    transceiver the offer left unmatched.
    """
    lines = sdp.replace("\r\n", "\n").split("\n")
    if not lines or lines[0].strip() != "v=0":
        raise InvalidRequest("The body is not an SDP offer (it must start with v=0).")
    sections = [line[2:].split(" ", 1)[0] for line in lines if line.startswith("m=")]
    if not sections:
        raise InvalidRequest("The SDP offer has no media section.")
    if len(sections) > MAX_MEDIA_SECTIONS:  # each costs an ICE transport; a WHIP/WHEP offer needs two
        raise InvalidRequest(f"The SDP offer has more than {MAX_MEDIA_SECTIONS} media sections.")
    kinds = set(sections)
    # aiortc accepts an offer without these and only fails later, inside DTLS or ICE
    for attr in ("a=fingerprint:", "a=ice-ufrag:", "a=ice-pwd:"):
        if not any(line.startswith(attr) for line in lines):
            raise InvalidRequest(f"The SDP offer lacks {attr.rstrip(':')}.")
    return kinds


def _first_codec(transceiver: Any) -> str | None:
    for codec in getattr(transceiver, "_codecs", []):
        name = MIME_TO_CODEC.get(codec.mimeType.lower())
        if name is not None:
            return name
    return None


class WebRtcPlane:
    """The sessions of one WHIP/WHEP endpoint."""

    def __init__(self, options: WhipOptions, hub: PathHub, new_id: Callable[[], str]) -> None:
        self.options = options
        self.hub = hub
        self._new_id = new_id
        self.sessions: dict[str, Session] = {}
        self._config = rtc_configuration(options.ice_servers)
        self._closing: set[asyncio.Task[Any]] = set()
        self.transcoders = Transcoders(hub)
        self.quota = SessionQuota(
            options.max_sessions_per_credential,
            options.max_sessions_per_account,
            retry_after=options.connect_timeout_seconds,
        )

    def __repr__(self) -> str:
        return f"<WebRtcPlane sessions={len(self.sessions)}>"

    def _admit(self, credential: str, account: str | None) -> Callable[[], None]:
        """Check the caps and take this offer's slots (before any await); the result gives them back."""
        if len(self.sessions) >= self.options.max_sessions:
            raise Unavailable("Too many WebRTC sessions on this server; retry later.")
        return self.quota.reserve(credential_digest(credential), account)

    def _new_session(self, kind: str, path: str, pc: Any, credential: str) -> Session:
        sid = secrets.token_urlsafe(18)
        etag = '"' + hashlib.sha256(sid.encode()).hexdigest()[:16] + '"'
        session = Session(sid, kind, path, pc, credential_digest(credential), etag)
        return session

    async def _apply_offer(self, pc: Any, sdp: str) -> None:
        from aiortc import RTCSessionDescription

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:
            # aiortc raises ValueError, KeyError, IndexError, OperationError ... on bad offers
            if "codec" in str(exc).lower() or type(exc).__name__ == "OperationError":
                raise InvalidRequest("The SDP offer shares no codec with this stream.") from None
            raise InvalidRequest("The SDP offer is malformed.") from None
        prefer_dtls_server(pc)

    async def _answer(self, pc: Any) -> str:
        try:
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
        except Exception as exc:
            log.info("no answer for an offer: %s: %s", type(exc).__name__, exc)
            raise InvalidRequest("No answer can be made for this SDP offer.") from None
        return str(pc.localDescription.sdp)

    # --- WHIP ---------------------------------------------------------------------------

    async def publish(self, path: str, sdp: str, credential: str, *, account: str | None = None) -> tuple[Session, str]:
        if not self.hub.can_take_over(path):
            raise Conflict("This stream path already has a publisher.")
        release = self._admit(credential, account)
        try:
            session, answer = await self._publish(path, sdp, credential)
        except BaseException:
            release()
            raise
        session.release_quota = release
        return session, answer

    async def _publish(self, path: str, sdp: str, credential: str) -> tuple[Session, str]:
        from aiortc import RTCPeerConnection, RTCRtpSender

        kinds = _offer_kinds(sdp)
        pc = RTCPeerConnection(self._config)
        try:
            if "video" in kinds:
                video = pc.addTransceiver("video", direction="recvonly")
                caps = RTCRtpSender.getCapabilities("video").codecs
                video.setCodecPreferences(
                    [
                        c
                        for codec in self.options.video_codecs
                        for c in caps
                        if c.mimeType.lower() == CODEC_TO_MIME[codec]
                    ]
                    + [c for c in caps if c.mimeType == "video/rtx"]
                )
            if "audio" in kinds:
                audio = pc.addTransceiver("audio", direction="recvonly")
                audio.setCodecPreferences(
                    [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType == "audio/opus"]
                )
            await self._apply_offer(pc, sdp)
            chosen: dict[str, Any] = {}
            for t in pc.getTransceivers():
                sends = t._offerDirection in ("recvonly", "sendrecv")  # reversed: the client sends
                if t.mid is None or not sends or t.kind in chosen:
                    t.direction = "inactive"
                    continue
                chosen[t.kind] = t
            if not chosen:
                raise InvalidRequest("The SDP offer sends no audio or video.")
            tracks: list[Track] = []
            taps: list[tuple[Any, Track]] = []
            for kind in ("video", "audio"):
                chosen_t = chosen.get(kind)
                codec = _first_codec(chosen_t) if chosen_t is not None else None
                if chosen_t is None or codec is None:
                    continue
                tb = RTP_VIDEO_TIME_BASE if kind == "video" else OPUS_TIME_BASE
                track = Track(
                    len(tracks),
                    kind,
                    codec,  # type: ignore[arg-type]
                    tb,
                    sample_rate=48000 if kind == "audio" else None,
                    channels=2 if kind == "audio" else None,
                )
                tracks.append(track)
                taps.append((chosen_t, track))
            if not tracks:
                raise InvalidRequest("The SDP offer shares no codec with this server (H264, VP8, Opus).")
            aac = (
                OpusToAac(len(tracks)) if self.options.aac_for_rtmp and any(t.codec == "opus" for t in tracks) else None
            )
            if aac is not None:
                tracks.append(aac.track)
            answer = await self._answer(pc)
            session = self._new_session("whip", path, pc, credential)
            publisher = await self.hub.open_publisher(path, "whip", tracks, takeover=True)
        except BaseException:
            await pc.close()
            raise
        session.publisher = publisher
        video_rx = next((t.receiver for t, tr in taps if tr.kind == "video"), None)
        if video_rx is not None:
            session.keyframes = KeyframeRequester(
                video_rx,
                sdp,
                retry=self.options.keyframe_interval_seconds,
                attempts=self.options.keyframe_request_attempts,
            )
            publisher.on_keyframe_request = session.keyframes.request
        for t, track in taps:
            tap_receiver(
                t.receiver, self._publish_sink(session, publisher, track, aac if track.codec == "opus" else None)
            )
        publisher.on_close(lambda _reason: self._schedule_close(session))
        self._watch_connection(session)
        self.sessions[session.id] = session
        log.info("WHIP publish on %s (%s)", path, ", ".join(f"{t.kind}:{t.codec}" for t in tracks))
        return session, answer

    def _publish_sink(
        self, session: Session, publisher: Publisher, track: Track, aac: OpusToAac | None = None
    ) -> Callable[[Any, Any], None]:
        params = H264ParameterSets() if track.codec == "h264" else None
        index = track.index

        def on_frame(_codec: Any, frame: Any) -> None:
            data = bytes(frame.data)
            ts = int(frame.timestamp)
            if params is not None:
                data, key = params.canonical(data)
            elif track.codec == "vp8":
                key = vp8_is_keyframe(data)
            else:
                key = True
            if session.first_packet_at is None:
                session.first_packet_at = time.monotonic()
            if key and track.kind == "video" and session.keyframes is not None:
                session.keyframes.keyframe_seen()
            packet = Packet(index, data, ts, ts, key)
            publisher.send(packet)
            if aac is not None:
                if not publisher.readers:
                    aac.pause()
                    return
                for out in aac.convert(packet):
                    publisher.send(out)

        return on_frame

    # --- WHEP -----------------------------------------------------------------------------

    async def play(self, path: str, sdp: str, credential: str, *, account: str | None = None) -> tuple[Session, str]:
        publisher = self.hub.publisher(path)
        if publisher is None:
            raise NotFound("Nothing is being published on this path right now.")
        release = self._admit(credential, account)
        try:
            session, answer = await self._play(path, sdp, credential, publisher)
        except BaseException:
            release()
            raise
        session.release_quota = release
        return session, answer

    async def _play(self, path: str, sdp: str, credential: str, publisher: Publisher) -> tuple[Session, str]:
        from aiortc import RTCPeerConnection, RTCRtpSender

        kinds = _offer_kinds(sdp)
        offered = _offered_codecs(sdp)
        pc = RTCPeerConnection(self._config)
        session = self._new_session("whep", path, pc, credential)
        try:
            for track in publisher.tracks:
                if track.kind not in kinds or any(t.kind == track.kind for t in session.tracks):
                    continue
                read_path, source_track, on_end = path, track, lambda: self._schedule_close(session)
                target = _webrtc_target(track, offered, track.index in publisher.reordered)
                if target is None:
                    log.info("WHEP on %s: no codec for the %s track in the offer; left out", path, track.codec)
                    continue
                if target != track.codec or track.index in publisher.reordered:
                    # converted once per path and codec, shared by every viewer; losing it costs this track only
                    read_path, source_track = await self.transcoders.derive(path, track, target)
                    on_end = _nothing
                mime = CODEC_TO_MIME[source_track.codec]
                reader = self.hub.open_reader(read_path, max_queue=self.options.reader_queue)
                session.readers.append(reader)
                hub_track = HubTrack(track.kind, reader, source_track.index, source_track.time_base, on_end)
                session.tracks.append(hub_track)
                t = pc.addTransceiver(hub_track, direction="sendonly")
                caps = RTCRtpSender.getCapabilities(track.kind).codecs
                t.setCodecPreferences(
                    [c for c in caps if c.mimeType.lower() == mime]
                    + ([c for c in caps if c.mimeType == "video/rtx"] if track.kind == "video" else [])
                )
                # a viewer's PLI asks whoever encodes (the publisher, or a shared transcoder) for a keyframe
                setattr(t.sender, "_send_keyframe", reader.request_keyframe)  # noqa: B010
            if not session.tracks:
                raise InvalidRequest("This stream has no track WebRTC can play yet.")
            await self._apply_offer(pc, sdp)
            negotiated = 0
            for t in pc.getTransceivers():
                if t.mid is None or t._offerDirection not in ("sendonly", "sendrecv"):
                    # not asked for (or the offer wants to send): never started, so stop its reader now
                    if t.sender.track is not None:
                        t.sender.track.stop()
                    t.direction = "inactive"
                    continue
                negotiated += 1
            if not negotiated:
                raise InvalidRequest("The SDP offer receives none of this stream's tracks.")
            answer = await self._answer(pc)
        except BaseException:
            for tr in session.tracks:
                tr.stop()
            await pc.close()
            raise
        # a transcoded track reads a derived path, which outlives the publisher by the transcoder's linger (or is
        # ended without saying why): the viewer is closed when the *source* leaves, as a passthrough viewer is
        session.forget_source = publisher.on_close(lambda _reason: self._schedule_close(session))
        if publisher.closed:  # it left while the answer was being made
            self._schedule_close(session)
        self._watch_connection(session)
        self.sessions[session.id] = session
        return session, answer

    # --- both ----------------------------------------------------------------------------------

    def _watch_connection(self, session: Session) -> None:
        # ICE against a peer that never answers keeps checking for ~30 s (aioice's retransmissions),
        # holding a session, its reader and its quota slots; a session must connect sooner than that.
        session.connect_deadline = asyncio.get_running_loop().call_later(
            self.options.connect_timeout_seconds, self._connect_deadline_passed, session
        )

        @session.pc.on("connectionstatechange")  # type: ignore[untyped-decorator]
        async def on_state() -> None:
            state = session.pc.connectionState
            if state == "connected" and session.connect_deadline is not None:
                session.connect_deadline.cancel()
                session.connect_deadline = None
            elif state == "failed":
                # ICE or DTLS failed (e.g. a certificate that does not match the offer's fingerprint)
                await self.end(session, reason=connection_failure_reason(session.pc))
            elif state == "closed":
                await self.end(session)

    def _connect_deadline_passed(self, session: Session) -> None:
        session.connect_deadline = None
        if session.closed or session.pc.connectionState == "connected":
            return
        log.info(
            "%s session on %s: not connected within %ss; ended",
            session.kind.upper(),
            session.path,
            self.options.connect_timeout_seconds,
        )
        self._schedule_close(session, reason=connection_failure_reason(session.pc, timed_out=True))

    def _schedule_close(self, session: Session, reason: str | None = None) -> None:
        if session.closed:
            return
        task = asyncio.ensure_future(self.end(session, reason=reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def get(self, session_id: str) -> Session | None:
        return self.sessions.get(session_id)

    async def end(self, session: Session, reason: str | None = None) -> None:
        if session.closed:
            return
        session.closed = True
        self.sessions.pop(session.id, None)
        session.release_quota()
        session.forget_source()
        if session.connect_deadline is not None:
            session.connect_deadline.cancel()
            session.connect_deadline = None
        for track in session.tracks:
            track.stop()
        for reader in session.readers:
            reader.close()
        if session.keyframes is not None:
            await session.keyframes.close()
        if session.publisher is not None:
            await session.publisher.close(reason)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(session.pc.close(), timeout=5)
        if session.kind == "whep":
            sent = sum(t.sent for t in session.tracks)
            skipped = sum(r.dropped for r in session.readers)
            log.info("WHEP session on %s ended: sent=%d skipped=%d", session.path, sent, skipped)
        else:
            log.info("WHIP session on %s ended", session.path)

    async def close(self) -> None:
        for session in list(self.sessions.values()):
            await self.end(session)
        await self.transcoders.close()
        for task in list(self._closing):
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, timeout=5)
