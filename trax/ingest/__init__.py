"""The media ingest plane: stream paths, media tokens, the path hub and protocol listeners.

``runtime.media_tokens`` (:class:`MediaTokens`) mints and verifies media tokens;
``runtime.hub`` (:class:`PathHub`) joins publishers and readers of every protocol
through canonical :class:`Packet`s of :class:`Track`s. See ``docs/ingest.md``.
"""

from trax.domain.ingest import IngestCredentials
from trax.ingest.hub import PathHub, Publisher, Reader
from trax.ingest.media import Packet, Track
from trax.ingest.tokens import MediaTokens

__all__ = ["IngestCredentials", "MediaTokens", "Packet", "PathHub", "Publisher", "Reader", "Track"]
