"""The wire layer spells the domain's vocabularies as Literals (OpenAPI needs them static); they must agree."""

from __future__ import annotations

import typing

from trax.domain.destinations import DestinationStatus
from trax.domain.scopes import SCOPES
from trax.domain.sources import SourceKind, SourceStatus
from trax.domain.studios import StudioStatus
from trax.server import wire


def test_scope_literal_is_the_scope_vocabulary() -> None:
    assert typing.get_args(wire.ScopeT) == SCOPES


def test_status_and_kind_literals_match_the_domain_enums() -> None:
    pairs = [
        (wire.StudioStatusT, StudioStatus),
        (wire.SourceStatusT, SourceStatus),
        (wire.SourceKindT, SourceKind),
        (wire.DestinationStatusT, DestinationStatus),
    ]
    for literal, enum in pairs:
        assert set(typing.get_args(literal)) == {e.value for e in enum}, enum.__name__
