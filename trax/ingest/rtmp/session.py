"""One RTMP connection: handshake, then the command state machine for publishing or playing.

Everything a client can make us hold is bounded (see ``RtmpOptions``); any protocol
violation ends this connection only. Credentials are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from trax.domain.errors import Conflict, TraxError, Unauthorized
from trax.ingest.hub import TAKEOVER_REASON
from trax.ingest.media import Packet
from trax.ingest.rtmp import amf0, handshake
from trax.ingest.rtmp import messages as m
from trax.ingest.rtmp.auth import (
    AdobeChallenges,
    Credential,
    adobe_response,
    decoy_salt,
    from_params,
    from_userinfo,
    split_query,
    tcurl_query,
    tcurl_userinfo,
)
from trax.ingest.rtmp.budget import ByteBudget
from trax.ingest.rtmp.chunks import READ_SIZE, ChunkError, ChunkLimits, ChunkReader, ChunkWriter
from trax.ingest.rtmp.flv import FlvEgress, FlvError, FlvIngest
from trax.ingest.rtmp.messages import Message
from trax.ingest.rtmp.options import RtmpOptions

log = logging.getLogger(__name__)

WINDOW_ACK = 5_000_000
APP_RE = re.compile(r"^(inputs|studios/studio_[0-9A-Za-z]{1,64})$")
STREAM_NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class ProtocolError(ConnectionError):
    """The client broke the RTMP rules; its connection ends."""


class _Refused(Exception):
    """A refusal already sent to the client; the connection closes after it."""


class MediaEnv(Protocol):
    """What a session needs from the runtime (the real ``Runtime`` satisfies it)."""

    hub: Any
    media_tokens: Any
    services: Any
    deps: Any


@dataclass
class _Publishing:
    stream_id: int
    path: str
    ingest: FlvIngest
    publisher: Any = None
    held_bytes: int = 0


class RtmpSession:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        env: MediaEnv,
        options: RtmpOptions,
        protocol: str,
        challenges: AdobeChallenges,
        *,
        budget: ByteBudget | None = None,
        on_authorised: Callable[[], None] | None = None,
    ) -> None:
        self.env = env
        self.options = options
        self.protocol = protocol
        self._reader = reader
        self._writer = writer
        self._challenges = challenges
        self._limits = ChunkLimits(
            max_message_size=options.max_message_size,
            max_chunk_size=options.max_chunk_size,
            max_chunk_streams=options.max_chunk_streams,
            max_pending_bytes=2 * options.max_message_size,
        )
        # Until a publish/play is authorised only commands are expected: anything larger is not an
        # encoder talking, and would let an anonymous socket hold megabytes (docs/rtmp.md).
        small = min(options.unauthenticated_max_message_size, options.max_message_size)
        self.chunks = ChunkReader(
            reader,
            ChunkLimits(
                max_message_size=small,
                max_chunk_size=options.max_chunk_size,
                max_chunk_streams=options.max_chunk_streams,
                max_pending_bytes=2 * small,
            ),
            budget,
        )
        self.chunks.read_size = max(4096, small)
        self._on_authorised = on_authorised
        self._deadline: asyncio.Timeout | None = None
        self.authorised = False
        self.out = ChunkWriter(writer)
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "?"
        self.app: str | None = None
        self.tc_url = ""
        self.connect_credential: Credential | None = None
        self.adobe_source: Any = None
        self.streams: set[int] = set()
        self._next_stream = 1
        self.publishing: _Publishing | None = None
        self._play_task: asyncio.Task[None] | None = None
        self._pending_open: asyncio.Task[None] | None = None
        self._closing = False

    # --- lifecycle -----------------------------------------------------------------

    async def run(self) -> None:
        reason: str | None = None
        try:
            # handshake, connect and publish/play must all be done within auth_timeout of the accept
            async with asyncio.timeout(self.options.auth_timeout) as self._deadline:
                await handshake.accept(self._reader, self._writer, within=self.options.handshake_timeout)
                await self._loop()
        except (handshake.HandshakeError, ChunkError, ProtocolError, amf0.AmfError, FlvError) as exc:
            reason = f"rtmp: {exc}"
            log.info("%s %s: %s", self.protocol, self.peer, exc)
        except _Refused:
            pass
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass  # the client went away or went silent
        finally:
            await self._cleanup(reason)

    async def _cleanup(self, reason: str | None) -> None:
        self._closing = True
        if self._play_task is not None:
            self._play_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._play_task
        await self._end_publishing(reason if self.publishing is not None and self.publishing.publisher else None)
        self.chunks.release()
        self._writer.close()
        try:
            async with asyncio.timeout(2):
                await self._writer.wait_closed()
        except Exception:  # a peer that stopped reading keeps the buffer (and socket) forever otherwise
            transport = self._writer.transport
            if transport is not None:
                transport.abort()

    async def _loop(self) -> None:
        # connect must arrive within the handshake budget, however slowly the bytes trickle in
        self.chunks.read_timeout = self.options.handshake_timeout
        async with asyncio.timeout(self.options.handshake_timeout):
            while self.app is None:
                await self._step()
        while not self._closing:
            # players may stay silent (their write timeout watches them); anyone else must keep talking
            self.chunks.read_timeout = None if self._play_task is not None else self.options.idle_timeout
            await self._step()

    async def _step(self) -> None:
        msg = await self.chunks.read_message()
        seq = self.chunks.ack_due()
        if seq is not None:
            self.out.send(m.acknowledgement(seq), m.CSID_CONTROL)
        await self._dispatch(msg)

    # --- dispatch --------------------------------------------------------------------

    async def _dispatch(self, msg: Message) -> None:
        t = msg.type_id
        if t in (m.AUDIO, m.VIDEO):
            self._media(msg.type_id, msg.timestamp, msg.payload, msg.stream_id)
        elif t == m.AGGREGATE:
            self._aggregate(msg)
        elif t in (m.COMMAND_AMF0, m.COMMAND_AMF3):
            body = msg.payload[1:] if t == m.COMMAND_AMF3 and msg.payload[:1] == b"\x00" else msg.payload
            await self._command(msg.stream_id, amf0.decode_all(body))
        elif t in (m.DATA_AMF0, m.DATA_AMF3):
            body = msg.payload[1:] if t == m.DATA_AMF3 and msg.payload[:1] == b"\x00" else msg.payload
            self._data(amf0.decode_all(body))
        elif t == m.USER_CONTROL and len(msg.payload) >= 6 and msg.payload[:2] == b"\x00\x06":
            self.out.send(m.user_control(m.PING_RESPONSE, int.from_bytes(msg.payload[2:6], "big")), m.CSID_CONTROL)

    def _send_command(self, stream_id: int, *values: Any) -> None:
        self.out.send(Message(m.COMMAND_AMF0, stream_id, 0, amf0.encode(*values)), m.CSID_COMMAND)

    def _on_status(self, stream_id: int, level: str, code: str, description: str) -> None:
        info = {"level": level, "code": code, "description": description}
        self._send_command(stream_id, "onStatus", 0, None, info)

    async def _refuse_status(self, stream_id: int, code: str, description: str) -> None:
        self._on_status(stream_id, "error", code, description)
        await self._flush()
        raise _Refused

    async def _flush(self) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.options.write_timeout):
                await self.out.drain()

    async def _command(self, stream_id: int, values: list[Any]) -> None:
        if not values or not isinstance(values[0], str):
            raise ProtocolError("command without a name")
        name = values[0]
        txn = values[1] if len(values) > 1 and isinstance(values[1], float) else 0.0
        args = values[2:]
        if name == "connect":
            await self._connect(txn, args[0] if args and isinstance(args[0], dict) else {})
            return
        if self.app is None:
            raise ProtocolError(f"{name} before connect")
        if name == "createStream":
            if len(self.streams) >= self.options.max_streams:
                self._send_command(0, "_error", txn, None, _status("error", "NetStream.Failed", "Too many streams."))
                return
            sid = self._next_stream
            self._next_stream += 1
            self.streams.add(sid)
            self._send_command(0, "_result", txn, None, float(sid))
        elif name in ("releaseStream", "FCPublish", "FCUnpublish", "FCSubscribe", "getStreamLength", "_checkbw"):
            if name == "FCUnpublish":
                await self._end_publishing(None)
            if txn:
                # a live path has no length; FFmpeg expects a number here
                self._send_command(0, "_result", txn, None, 0.0 if name == "getStreamLength" else None)
        elif name == "publish":
            await self._publish(stream_id, _arg_str(args, 1))
        elif name == "play":
            await self._play(stream_id, _arg_str(args, 1))
        elif name in ("deleteStream", "closeStream"):
            sid = int(args[1]) if len(args) > 1 and isinstance(args[1], float) else stream_id
            self.streams.discard(sid)
            if self.publishing is not None and self.publishing.stream_id in (sid, stream_id):
                await self._end_publishing(None)
            if self._play_task is not None:
                self._play_task.cancel()

    # --- connect -----------------------------------------------------------------------

    async def _connect(self, txn: float, cmd: dict[str, Any]) -> None:
        if self.app is not None:
            raise ProtocolError("second connect")
        app_raw = cmd.get("app")
        tc_url = cmd.get("tcUrl")
        app_raw = app_raw if isinstance(app_raw, str) and len(app_raw) <= 4096 else ""
        self.tc_url = tc_url if isinstance(tc_url, str) and len(tc_url) <= 4096 else ""
        app, params = split_query(app_raw.strip("/"))
        app = app.strip("/")
        params = {**tcurl_query(self.tc_url), **params}
        if not APP_RE.match(app):
            await self._reject_connect(txn, "Unknown application: publish to rtmp://host/<stream path>.")
        if params.get("authmod") == "adobe":
            await self._adobe(txn, params)
        else:
            self.connect_credential = from_userinfo(tcurl_userinfo(self.tc_url)) or from_params(params, "tcurl-query")
            if self.connect_credential is None and self.options.adobe_challenge == "always":
                await self._reject_connect(txn, AdobeChallenges.need_auth_description())
        self.app = app
        self.out.send(m.window_ack_size(WINDOW_ACK), m.CSID_CONTROL)
        self.out.send(m.set_peer_bandwidth(WINDOW_ACK), m.CSID_CONTROL)
        self.out.set_chunk_size(self.options.out_chunk_size)
        props = {"fmsVer": "FMS/3,0,1,123", "capabilities": 31.0}
        info = {**_status("status", "NetConnection.Connect.Success", "Connection succeeded."), "objectEncoding": 0.0}
        self._send_command(0, "_result", txn, props, info)
        await self._flush()

    async def _reject_connect(self, txn: float, description: str) -> None:
        self._send_command(0, "_error", txn, None, _status("error", "NetConnection.Connect.Rejected", description))
        await self._flush()
        raise _Refused

    async def _adobe(self, txn: float, params: dict[str, str]) -> None:
        user = params.get("user")
        if not user:
            await self._reject_connect(txn, AdobeChallenges.need_auth_description())
            return
        if len(user) > 256:
            await self._reject_connect(txn, AdobeChallenges.failed_description())
            return
        source = await self.env.services.sources.by_stream_key(user)
        salt = getattr(source, "stream_key_salt", None)
        digest = getattr(source, "stream_key_digest", None)
        response, challenge2, opaque = params.get("response"), params.get("challenge"), params.get("opaque")
        if response is None or challenge2 is None or opaque is None:
            if salt is None:
                salt = decoy_salt(user, self.env.deps.server_key)
            challenge, opaque = self._challenges.issue(user)
            await self._reject_connect(txn, AdobeChallenges.challenge_description(user, salt, challenge, opaque))
            return
        ok = (
            source is not None
            and digest is not None
            and self._challenges.check(user, opaque)
            and _consteq(adobe_response(digest, opaque, challenge2), response)
        )
        if not ok:
            log.info("%s %s: adobe challenge failed", self.protocol, self.peer)
            await self._reject_connect(txn, AdobeChallenges.failed_description())
        self.adobe_source = source
        self.connect_credential = Credential(adobe_user=user, form="adobe")

    # --- credentials -------------------------------------------------------------------

    def _path_and_credential(self, name: str) -> tuple[str, Credential | None]:
        base, params = split_query(name)
        if not STREAM_NAME_RE.match(base):
            raise Unauthorized("The stream name is not a stream path.")
        path = f"{self.app}/{base}"
        return path, from_params(params, "query") or self.connect_credential

    async def _authorize(self, name: str, action: str) -> str:
        path, cred = self._path_and_credential(name)
        if cred is None:
            raise Unauthorized("No credential: add ?user=trax&pass=<token> to the stream name.")
        if cred.form == "adobe":
            if self.adobe_source is None or self.adobe_source.path != path:
                raise Unauthorized("The stream key is not valid for this path.")
            return path
        assert cred.secret is not None
        await self.env.media_tokens.authorize(cred.secret, path=path, action=action, audiences=("ingest",))
        return path

    def _authorised_now(self) -> None:
        """A publish or play was authorised: the deadline and the small-message rule end here."""
        if self.authorised:
            return
        self.authorised = True
        if self._deadline is not None:
            self._deadline.reschedule(None)
        self.chunks.limits = self._limits
        self.chunks.read_size = READ_SIZE
        if self._on_authorised is not None:
            self._on_authorised()

    # --- publish -----------------------------------------------------------------------

    async def _publish(self, stream_id: int, name: str) -> None:
        if stream_id not in self.streams:
            raise ProtocolError("publish on a stream that was not created")
        if self.publishing is not None or self._play_task is not None:
            await self._refuse_status(stream_id, "NetStream.Publish.BadName", "This connection is already streaming.")
        try:
            path = await self._authorize(name, "publish")
        except TraxError as exc:
            log.info("%s %s: publish refused: %s", self.protocol, self.peer, exc.message)
            await self._refuse_status(stream_id, "NetStream.Publish.BadName", f"Unauthorized: {exc.message}")
            return
        if not self.env.hub.can_take_over(path):
            await self._refuse_status(stream_id, "NetStream.Publish.BadName", "The path already has a publisher.")
        self._authorised_now()
        self.publishing = _Publishing(stream_id, path, FlvIngest())
        log.info("%s %s: publishing %s", self.protocol, self.peer, path)
        self.out.send(m.user_control(m.STREAM_BEGIN, stream_id), m.CSID_CONTROL)
        self._on_status(stream_id, "status", "NetStream.Publish.Start", f"{path} is now published.")
        await self._flush()

    def _data(self, values: list[Any]) -> None:
        if self.publishing is None or not values:
            return
        if values[0] == "@setDataFrame":
            values = values[1:]
        if len(values) >= 2 and values[0] == "onMetaData" and isinstance(values[1], dict):
            self.publishing.ingest.on_metadata(values[1])

    def _aggregate(self, msg: Message) -> None:
        data, pos, base = msg.payload, 0, None
        while pos + 11 <= len(data):
            tag_type = data[pos]
            size = int.from_bytes(data[pos + 1 : pos + 4], "big")
            ts = int.from_bytes(data[pos + 4 : pos + 7], "big") | (data[pos + 7] << 24)
            body_end = pos + 11 + size
            if body_end + 4 > len(data):
                raise ProtocolError("truncated aggregate message")
            base = ts if base is None else base
            if tag_type in (m.AUDIO, m.VIDEO):
                self._media(tag_type, msg.timestamp + ts - base, data[pos + 11 : body_end], msg.stream_id)
            pos = body_end + 4

    def _media(self, type_id: int, timestamp: int, payload: bytes | bytearray, stream_id: int) -> None:
        pub = self.publishing
        if pub is None or stream_id != pub.stream_id:
            return
        if pub.publisher is None:
            pub.held_bytes += len(payload)
            packets = pub.ingest.push(type_id, timestamp, payload)
            if pub.ingest.tracks is None and pub.held_bytes > self.options.max_message_size * 2:
                packets = pub.ingest.release()
            if pub.ingest.tracks is not None:
                self._open_publisher_later(pub, packets)
            return
        if isinstance(pub.publisher, _Opening):
            if len(pub.publisher.held) >= 4096:
                raise ProtocolError("too much media while the path was being opened")
            pub.publisher.held.append((type_id, timestamp, payload))
            return
        if pub.publisher.closed:
            return
        for packet in pub.ingest.push(type_id, timestamp, payload):
            pub.publisher.send(packet)

    def _open_publisher_later(self, pub: _Publishing, packets: list[Packet]) -> None:
        # Opening is async (status write); media arriving meanwhile is held by the ingest.
        pub.publisher = _Opening()
        self._pending_open = asyncio.create_task(self._open_publisher(pub, packets), name=f"rtmp-open {pub.path}")

    async def _open_publisher(self, pub: _Publishing, packets: list[Packet]) -> None:
        tracks = pub.ingest.tracks or []
        if not tracks:
            log.info(
                "%s %s: no supported codec on %s (%s)",
                self.protocol,
                self.peer,
                pub.path,
                sorted(pub.ingest.ignored),
            )
            self._on_status(pub.stream_id, "error", "NetStream.Publish.Failed", "No H.264 video or AAC audio.")
            self._abort(hard=False)
            return
        try:
            publisher = await self.env.hub.open_publisher(pub.path, self.protocol, tracks, takeover=True)
        except Conflict:
            self._on_status(pub.stream_id, "error", "NetStream.Publish.BadName", "The path already has a publisher.")
            self._abort(hard=False)
            return
        except Exception:
            log.exception("rtmp: opening %s failed", pub.path)
            self._abort(hard=True)
            return
        if self.publishing is not pub:  # the client left while the path was being opened
            await publisher.close(None)
            return
        opening = pub.publisher
        pub.publisher = publisher
        publisher.on_close(self._publisher_closed)
        for packet in packets:
            publisher.send(packet)
        assert isinstance(opening, _Opening)
        for type_id, ts, payload in opening.held:
            for packet in pub.ingest.push(type_id, ts, payload):
                publisher.send(packet)

    def _publisher_closed(self, reason: str | None) -> Coroutine[Any, Any, None] | None:
        if self.publishing is not None and not self._closing:
            log.info("%s %s: the hub ended %s (%s)", self.protocol, self.peer, self.publishing.path, reason)
            if reason != TAKEOVER_REASON:
                self._abort(hard=True)
                return None
            # tell the encoder why (ffmpeg prints "Server error: ..." when it reads it between two writes),
            # then drop the connection: soon, since a crashed encoder reads nothing
            return self._tell_and_drop(self.publishing.stream_id)
        return None

    async def _tell_and_drop(self, stream_id: int) -> None:
        self._on_status(stream_id, "error", "NetStream.Publish.Failed", "Taken over by a new publisher.")
        await self._flush()
        await asyncio.sleep(0.5)
        self._abort(hard=True)

    def _abort(self, *, hard: bool) -> None:
        """End the connection: flush what was sent (a refusal the client should print) or drop it."""
        self._closing = True
        transport = self._writer.transport
        if transport is None:
            return
        if hard:
            transport.abort()
        else:
            self._writer.close()

    async def _end_publishing(self, reason: str | None) -> None:
        pub, self.publishing = self.publishing, None
        if pub is None:
            return
        pending = self._pending_open
        if pending is not None and not pending.done():
            with contextlib.suppress(Exception):
                await pending
        if pub.publisher is not None and not isinstance(pub.publisher, _Opening):
            await pub.publisher.close(reason)
            log.info("%s %s: %s unpublished", self.protocol, self.peer, pub.path)

    # --- play ----------------------------------------------------------------------------

    async def _play(self, stream_id: int, name: str) -> None:
        if stream_id not in self.streams:
            raise ProtocolError("play on a stream that was not created")
        if self.publishing is not None or self._play_task is not None:
            await self._refuse_status(stream_id, "NetStream.Play.Failed", "This connection is already streaming.")
        try:
            path = await self._authorize(name, "read")
            reader = self.env.hub.open_reader(path, max_queue=self.options.read_queue)
        except TraxError as exc:
            log.info("%s %s: play refused: %s", self.protocol, self.peer, exc.message)
            code = "NetStream.Play.Failed" if isinstance(exc, Conflict) else "NetStream.Play.BadName"
            await self._refuse_status(stream_id, code, f"Unauthorized: {exc.message}")
            return
        self._authorised_now()
        log.info("%s %s: playing %s", self.protocol, self.peer, path)
        self.out.send(m.user_control(m.STREAM_BEGIN, stream_id), m.CSID_CONTROL)
        self._on_status(stream_id, "status", "NetStream.Play.Reset", f"Playing and resetting {path}.")
        self._on_status(stream_id, "status", "NetStream.Play.Start", f"Started playing {path}.")
        self.out.send(Message(m.DATA_AMF0, stream_id, 0, amf0.encode("|RtmpSampleAccess", True, True)), m.CSID_DATA)
        await self._flush()
        self._play_task = asyncio.create_task(self._play_loop(stream_id, reader), name=f"rtmp-play {path}")

    async def _play_loop(self, stream_id: int, reader: Any) -> None:
        try:
            async with reader:
                tracks = await reader.tracks()
                egress = FlvEgress(list(tracks))
                meta = amf0.encode("onMetaData", amf0.EcmaArray(egress.metadata()))
                self.out.send(Message(m.DATA_AMF0, stream_id, 0, meta), m.CSID_DATA)
                async for packet in reader:
                    for type_id, ts, payload in egress.convert(packet):
                        csid = m.CSID_VIDEO if type_id == m.VIDEO else m.CSID_AUDIO
                        self.out.send(Message(type_id, stream_id, ts, payload), csid)
                    if self.out.buffered() > 256 * 1024:
                        async with asyncio.timeout(self.options.write_timeout):
                            await self.out.drain()
                self.out.send(m.user_control(m.STREAM_EOF, stream_id), m.CSID_CONTROL)
                self._on_status(stream_id, "status", "NetStream.Play.Stop", "The publisher left.")
                await self._flush()
        except (TimeoutError, ConnectionError, TraxError):
            if not self._closing:
                self._abort(hard=True)  # a player that stopped reading: drop its backlog
            return
        if not self._closing:
            self._abort(hard=False)


class _Opening:
    """Placeholder while the hub opens the path: media is held here in arrival order."""

    closed = False

    def __init__(self) -> None:
        self.held: list[tuple[int, int, bytes | bytearray]] = []

    def send(self, packet: Packet) -> None:  # pragma: no cover - never called; see _media
        raise AssertionError


def _status(level: str, code: str, description: str) -> dict[str, Any]:
    return {"level": level, "code": code, "description": description}


def _arg_str(args: list[Any], index: int) -> str:
    value = args[index] if len(args) > index else None
    if not isinstance(value, str) or not value or len(value) > 4096:
        return ""
    return value


def _consteq(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
