"""RTMP message types and the protocol-control / user-control messages we send."""

from __future__ import annotations

import struct
from dataclasses import dataclass

SET_CHUNK_SIZE = 1
ABORT = 2
ACKNOWLEDGEMENT = 3
USER_CONTROL = 4
WINDOW_ACK_SIZE = 5
SET_PEER_BANDWIDTH = 6
AUDIO = 8
VIDEO = 9
DATA_AMF3 = 15
SHARED_OBJECT_AMF3 = 16
COMMAND_AMF3 = 17
DATA_AMF0 = 18
SHARED_OBJECT_AMF0 = 19
COMMAND_AMF0 = 20
AGGREGATE = 22

CONTROL_TYPES = frozenset({SET_CHUNK_SIZE, ABORT, ACKNOWLEDGEMENT, USER_CONTROL, WINDOW_ACK_SIZE, SET_PEER_BANDWIDTH})

# User control event types
STREAM_BEGIN = 0
STREAM_EOF = 1
PING_REQUEST = 6
PING_RESPONSE = 7

# Chunk stream ids we use when sending
CSID_CONTROL = 2
CSID_COMMAND = 3
CSID_AUDIO = 4
CSID_VIDEO = 6
CSID_DATA = 5


@dataclass(slots=True)
class Message:
    """One complete RTMP message as reassembled from its chunks."""

    type_id: int
    stream_id: int
    timestamp: int
    payload: bytes | bytearray


def set_chunk_size(size: int) -> Message:
    return Message(SET_CHUNK_SIZE, 0, 0, struct.pack(">I", size & 0x7FFFFFFF))


def window_ack_size(size: int) -> Message:
    return Message(WINDOW_ACK_SIZE, 0, 0, struct.pack(">I", size))


def set_peer_bandwidth(size: int, limit_type: int = 2) -> Message:
    return Message(SET_PEER_BANDWIDTH, 0, 0, struct.pack(">IB", size, limit_type))


def acknowledgement(sequence: int) -> Message:
    return Message(ACKNOWLEDGEMENT, 0, 0, struct.pack(">I", sequence & 0xFFFFFFFF))


def user_control(event: int, *values: int) -> Message:
    return Message(USER_CONTROL, 0, 0, struct.pack(">H", event) + b"".join(struct.pack(">I", v) for v in values))
