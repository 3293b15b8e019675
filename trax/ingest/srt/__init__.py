"""SRT ingest: the libsrt binding, the streamid grammar, MPEG-TS (de)muxing and the listener transport."""
