"""WHIP (RFC 9725) publishing and WHEP playback over aiortc, on their own Litestar app.

Nothing here imports aiortc or av at module import: the transport loads them in ``start()``.
"""
