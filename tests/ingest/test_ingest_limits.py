"""The bookkeeping behind the pre-authorisation limits: per-address slots and the RTMP byte budget."""

from __future__ import annotations

import asyncio

import pytest

from trax.ingest.addresses import AddressSlots, address_key
from trax.ingest.rtmp.budget import ByteBudget
from trax.ingest.rtmp.chunks import ChunkError, ChunkReader
from trax.ingest.rtmp.chunks import encode_message as encode
from trax.ingest.rtmp.messages import Message


def test_an_ipv6_host_counts_as_its_64() -> None:
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_key("192.0.2.7") == "192.0.2.7"


def test_address_caps_and_release() -> None:
    slots = AddressSlots(max_per_address=3, max_unauthorised_per_address=2)
    a, b = slots.admit("192.0.2.1"), slots.admit("192.0.2.1")
    assert a is not None and b is not None
    assert slots.admit("192.0.2.1") is None  # two waiting for authorisation: the third is refused
    assert slots.admit("192.0.2.2") is not None  # another address is not affected
    a.authorised()
    a.authorised()  # idempotent
    c = slots.admit("192.0.2.1")
    assert c is not None
    c.authorised()
    assert slots.admit("192.0.2.1") is None  # three connections: the total cap
    for s in (a, b, c, a):
        s.release()
    assert slots.connections("192.0.2.1") == 0 and slots.unauthorised("192.0.2.1") == 0
    assert len(slots) == 1  # only 192.0.2.2 still has a connection: nothing kept for a gone address


@pytest.mark.anyio
async def test_chunk_reader_charges_the_budget_and_returns_it_on_release() -> None:
    budget = ByteBudget(64 * 1024)
    r = asyncio.StreamReader()
    reader = ChunkReader(r, budget=budget)
    body = bytes(10_000)
    wire = encode(Message(9, 1, 0, body), 6, 128)
    r.feed_data(wire[:5000])  # part of a message: held until the rest arrives
    pending = asyncio.create_task(reader.read_message())
    await asyncio.sleep(0.01)
    assert 4000 < budget.in_use <= 5000
    r.feed_data(wire[5000:])
    msg = await asyncio.wait_for(pending, 1)
    assert bytes(msg.payload) == body
    reader.release()
    assert budget.in_use == 0


@pytest.mark.anyio
async def test_a_read_past_the_budget_ends_that_connection() -> None:
    budget = ByteBudget(4096)
    budget.take(4000)  # other connections hold most of it
    r = asyncio.StreamReader()
    reader = ChunkReader(r, budget=budget)
    r.feed_data(encode(Message(9, 1, 0, bytes(2000)), 6, 128)[:1000])
    with pytest.raises(ChunkError, match="too many bytes"):
        await reader.read_message()
    reader.release()
    assert budget.in_use == 4000
