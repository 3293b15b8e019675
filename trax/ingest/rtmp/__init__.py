"""RTMP and RTMPS ingest and playback, written here because no maintained Python RTMP server exists.

Layers, each in its own module with its own tests: ``amf0`` (values), ``handshake``
(C0/C1/C2 ↔ S0/S1/S2), ``chunks`` (the chunk stream, both directions), ``messages``
(message types and protocol control), ``flv`` (FLV tags ↔ the hub's canonical packets),
``auth`` (credential forms), ``session`` (one connection's command state machine) and
``listener`` (the TCP/TLS transport registered as ``rtmp`` and ``rtmps``).
"""
