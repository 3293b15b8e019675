"""The typed async interfaces plugins implement.

Pluggy hooks only *register* backends (see :mod:`trax.hookspecs`); every
per-request call goes through one of these Protocols, so the hot path is a
plain awaited method call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from trax.domain.base import Entity
from trax.domain.events import Event

if TYPE_CHECKING:
    from trax.domain.chat import ChatMessage
    from trax.domain.connections import Connection
    from trax.domain.stream import ProgramState

E = TypeVar("E", bound=Entity)


# --- storage -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Insert:
    entity: Entity


@dataclass(frozen=True, slots=True)
class Update:
    """Replace a stored entity. ``expect_updated_at`` makes it a compare-and-set."""

    entity: Entity
    expect_updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    kind: type[Entity]
    account_id: str
    id: str


Write = Insert | Update | Delete


@runtime_checkable
class Storage(Protocol):
    """Durable home of every entity, scoped by account.

    Rules every backend keeps (checked by :mod:`trax.testing.storage`):

    * ``get``/``list``/``delete`` never see another account's entities.
    * ``list`` returns entities of one kind (and optionally one parent) with
      ``id > after`` in ascending id order, at most ``limit`` of them.
    * ``apply`` performs all its writes or none; a duplicate id or a
      duplicate ``unique_keys()`` value raises :class:`~trax.domain.errors.Conflict`;
      an ``Update``/``Delete`` of a missing entity raises
      :class:`~trax.domain.errors.NotFound`; an ``Update`` whose
      ``expect_updated_at`` does not match raises ``Conflict``.
    * Parents and children (``Entity.parent_id``, e.g. a source's studio) stay
      consistent, judged on the state ``apply`` commits, inside its transaction,
      so it holds across processes sharing a backing store:

      - an ``Insert`` or ``Update`` of an entity whose ``parent_id`` is not
        ``None`` raises ``NotFound`` unless an entity with that id exists in the
        same account when the batch commits (it may be inserted earlier in the
        same batch);
      - a ``Delete`` must not leave children behind: if any entity still names
        a deleted entity as its parent after the batch's writes, the batch
        raises ``Conflict`` and writes nothing (the caller lists the children
        again and deletes them too).

      A check made before ``apply`` and a write made by it can be split by
      another writer; only the backend's own transaction closes that gap.
    * An acknowledged ``apply`` survives a crash of the process.
    * A backing service that is down raises :class:`~trax.domain.errors.Unavailable`.
    """

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise ``Unavailable`` when the backend cannot serve."""

    async def get(self, kind: type[E], account_id: str, id: str) -> E | None: ...

    async def list(
        self,
        kind: type[E],
        account_id: str,
        *,
        parent_id: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> list[E]: ...

    async def find_unique(self, kind: type[E], index: str, value: str) -> E | None:
        """The entity holding ``value`` in unique index ``index``, any account."""

    async def apply(self, writes: Sequence[Write]) -> None: ...

    async def touch_keys(self, last_used: Mapping[str, datetime]) -> None:
        """Record API keys' ``last_used_at`` in bulk (key id → time), best effort."""


# --- rate limits ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    """Seconds until the bucket is full again."""
    retry_after: float
    """Seconds until one token is available (0 when allowed)."""


@runtime_checkable
class RateLimiter(Protocol):
    """A token bucket per key: ``capacity`` tokens, refilled at ``refill_per_second``."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def acquire(self, key: str, *, capacity: int, refill_per_second: float, cost: int = 1) -> Decision: ...


# --- blobs ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredBlob:
    key: str
    size: int
    sha256: str


@runtime_checkable
class BlobStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def put(self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int) -> StoredBlob:
        """Store the stream under ``key`` and return its size and sha256.

        Raises ``PayloadTooLarge`` (and stores nothing) past ``max_bytes``.
        """

    def open_read(self, key: str) -> AsyncIterator[bytes]: ...

    async def delete(self, key: str) -> None: ...

    async def exists(self, key: str) -> bool: ...


@runtime_checkable
class PartialSweeper(Protocol):
    """A blob store whose interrupted ``put`` can leave partial data behind (a process killed mid-write).

    Optional: the runtime sweeps at start-up and every ``media.part_sweep_interval_seconds`` when the
    configured blob store has this method.
    """

    async def sweep_partials(self, *, older_than_seconds: float) -> int:
        """Remove partial data not written to for ``older_than_seconds``; returns how many were removed.

        Never removes the partial data of a ``put`` still running in this process, however old it looks.
        """


# --- platforms -----------------------------------------------------------


@runtime_checkable
class Platform(Protocol):
    """A streaming platform (YouTube, Twitch, ...) that destinations and chat go to."""

    name: str

    async def send_chat(self, connection: Connection, message: ChatMessage) -> None: ...


@dataclass(frozen=True, slots=True)
class IngestTarget:
    """Where a platform wants a program pushed: an ``rtmp(s)://`` or ``srt://`` URL and its secret parts."""

    url: str = field(repr=False)
    """``rtmp(s)://host/app`` (the key goes in ``stream_key``) or ``srt://host:port``."""
    stream_key: str | None = field(default=None, repr=False)
    streamid: str | None = field(default=None, repr=False)
    passphrase: str | None = field(default=None, repr=False)


@runtime_checkable
class IngestPlatform(Protocol):
    """A platform that can say where to push a connection's program (optional for platforms).

    Core code never knows a platform's ingest servers: a ``youtube`` or
    ``twitch`` destination is delivered to what its platform plugin answers here.
    """

    name: str

    async def ingest_target(self, connection: Connection) -> IngestTarget: ...


# --- broadcast -----------------------------------------------------------


@runtime_checkable
class Broadcaster(Protocol):
    """Runs studios' programs, egress and recordings in this process (``trax.broadcast``).

    The use cases call it after their writes commit; it never decides who may do what.
    """

    async def start(self, account_id: str, studio_id: str) -> None:
        """Start the studio's program (it is ``starting``); returns once the pipeline runs."""

    async def stop(self, account_id: str, studio_id: str) -> None:
        """End the studio's egress and recording cleanly (it is ``stopping``)."""

    def changed(self, account_id: str, studio_id: str) -> None:
        """The program, a source or a destination of a live studio changed: reconcile soon."""

    def program_state(self, studio_id: str) -> ProgramState | None:
        """The pipeline as this process runs it, or ``None`` when it runs no pipeline for the studio."""


# --- events --------------------------------------------------------------

EventHandler = Callable[[Event], Awaitable[None]]


@runtime_checkable
class EventBus(Protocol):
    """Delivers domain events to every subscriber (in every process, for shared buses)."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, event: Event) -> None: ...

    def subscribe(self, handler: EventHandler) -> Callable[[], None]:
        """Register ``handler``; returns a function that unsubscribes it."""


# --- ingest transports ---------------------------------------------------


@runtime_checkable
class Transport(Protocol):
    """A media listener (SRT, RTMP, WHIP, ...) started with the server."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


# --- authentication chain --------------------------------------------------


@runtime_checkable
class Authenticator(Protocol):
    """One link of the authentication chain.

    Returns ``None`` when the credential is not its kind (the next link is
    tried), a principal when valid, or raises ``Unauthorized``.
    """

    name: str

    async def authenticate(self, credential: str) -> Any: ...
