"""Every entity survives the storage encoding unchanged (types included: enums, datetimes, tuples)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trax.codec import decode_entity, encode_entity
from trax.domain import (
    ENTITY_TYPES,
    Account,
    ApiKey,
    AssetStatus,
    ChatDirection,
    ChatMessage,
    Connection,
    ConnectionStatus,
    Destination,
    DestinationStatus,
    Entity,
    MediaAsset,
    RateLimitOverride,
    Source,
    SourceKind,
    SourceStatus,
    Studio,
    StudioStatus,
    Upload,
)

T = datetime(2026, 11, 28, 17, 0, 0, 123000, tzinfo=UTC)
COMMON = {"account_id": "acct_01M8HRZ96ZCA4SP5QP3G8SF7YX", "created_at": T, "updated_at": T + timedelta(seconds=1)}

SAMPLES: list[Entity] = [
    Account(id="acct_1", name="acme", **COMMON),
    ApiKey(
        id="key_1",
        name="k",
        prefix="sk_live_abcd",
        key_hash="ab" * 32,
        scopes=("studios:read", "keys:manage"),
        last_used_at=T,
        revoked_at=None,
        expires_at=T + timedelta(days=1),
        rate_limit=RateLimitOverride(capacity=5, refill_per_second=0.5),
        **COMMON,
    ),
    Studio(id="studio_1", name="S", description=None, status=StudioStatus.LIVE, live_since=T, **COMMON),
    Source(
        id="src_1",
        studio_id="studio_1",
        name="cam",
        kind=SourceKind.WHIP,
        path="inputs/whip-00000000-0000-0000-0000-000000000000",
        status=SourceStatus.ERROR,
        status_reason="gone",
        **COMMON,
    ),
    Destination(
        id="dst_1",
        studio_id="studio_1",
        name="d",
        platform="custom_rtmp",
        enabled=False,
        status=DestinationStatus.LIVE,
        error=None,
        rtmp_url="rtmp://u:p@h/app",
        stream_key="secret",
        **COMMON,
    ),
    Connection(
        id="conn_1",
        platform="loopback",
        display_name="me",
        external_account_id="e",
        status=ConnectionStatus.REVOKED,
        linked_at=T,
        **COMMON,
    ),
    ChatMessage(
        id="msg_1",
        studio_id="studio_1",
        text="héllo ✓",
        direction=ChatDirection.INBOUND,
        platform="loopback",
        connection_id="conn_1",
        author_name="v",
        author_external_id="x",
        sent_at=T,
        **COMMON,
    ),
    MediaAsset(
        id="asset_1",
        name="a.mp4",
        content_type="video/mp4",
        size_bytes=5 * 1024**3,
        sha256="0" * 64,
        status=AssetStatus.READY,
        blob_key="acct/asset",
        **COMMON,
    ),
    Upload(id="upl_1", asset_id="asset_1", expires_at=T, max_bytes=3, token_hash="t", completed_at=T, **COMMON),
]


def test_every_entity_kind_has_a_sample() -> None:
    assert {type(s) for s in SAMPLES} == set(ENTITY_TYPES.values())


@pytest.mark.parametrize("entity", SAMPLES, ids=lambda e: e.KIND)
def test_round_trip(entity: Entity) -> None:
    back = decode_entity(type(entity), encode_entity(entity))
    assert back == entity
    for name in getattr(type(entity), "__dataclass_fields__", {}):
        assert type(getattr(back, name)) is type(getattr(entity, name)), name
