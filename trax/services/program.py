"""Reading a studio's ``program`` from a request: a merge patch over the current settings, checked once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from trax.domain.errors import InvalidRequest
from trax.domain.media import AssetStatus, MediaAsset
from trax.domain.program import (
    BITRATE_RANGE,
    FPS_RANGE,
    MAX_PROGRAM_SOURCES,
    MAX_SIZE,
    MIN_SIZE,
    SLATE_BLACK,
    Layout,
    OutputSettings,
    ProgramSettings,
)
from trax.domain.sources import Source
from trax.services import validation
from trax.services.deps import ServiceDeps

_PROGRAM_FIELDS = ("layout", "sources", "output", "passthrough", "record", "slate")
_OUTPUT_FIELDS = {
    "width": ("width", MIN_SIZE[0], MAX_SIZE[0]),
    "height": ("height", MIN_SIZE[1], MAX_SIZE[1]),
    "fps": ("fps", *FPS_RANGE),
    "videoBitrate": ("video_bitrate", *BITRATE_RANGE),
    "audioBitrate": ("audio_bitrate", *BITRATE_RANGE),
}


def _int_in(value: Any, param: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidRequest(f"{param} must be an integer in {low}..{high}.", param=param)
    return value


def _flag(value: Any, param: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidRequest(f"{param} must be a boolean.", param=param)
    return value


def _output(patch: Any, current: OutputSettings) -> OutputSettings:
    if not isinstance(patch, Mapping):
        raise InvalidRequest("program.output must be an object.", param="program.output")
    validation.only_fields(
        {f"program.output.{k}": v for k, v in patch.items()}, [f"program.output.{k}" for k in _OUTPUT_FIELDS]
    )
    fields: dict[str, int] = {}
    for wire_name, value in patch.items():
        attr, low, high = _OUTPUT_FIELDS[wire_name]
        fields[attr] = _int_in(value, f"program.output.{wire_name}", low, high)
    out = replace(current, **fields)
    if out.width % 2 or out.height % 2:
        raise InvalidRequest("program.output width and height must be even (4:2:0 video).", param="program.output")
    return out


async def _sources(deps: ServiceDeps, account_id: str, studio_id: str, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest("program.sources must be a list of source ids.", param="program.sources")
    if len(value) > MAX_PROGRAM_SOURCES:
        raise InvalidRequest(f"program.sources takes at most {MAX_PROGRAM_SOURCES} sources.", param="program.sources")
    if len(set(value)) != len(value):
        raise InvalidRequest("program.sources names a source twice.", param="program.sources")
    for source_id in value:
        src = await deps.storage.get(Source, account_id, source_id)
        if src is None or src.studio_id != studio_id:
            raise InvalidRequest(f"{source_id} is not a source of this studio.", param="program.sources")
    return tuple(value)


async def _slate(deps: ServiceDeps, account_id: str, value: Any) -> str:
    if value == SLATE_BLACK:
        return SLATE_BLACK
    if not isinstance(value, str):
        raise InvalidRequest("program.slate must be 'black' or a media asset id.", param="program.slate")
    asset = await deps.storage.get(MediaAsset, account_id, value)
    if asset is None or asset.status is not AssetStatus.READY:
        raise InvalidRequest("program.slate names no ready media asset of this account.", param="program.slate")
    return value


async def apply_program_patch(
    deps: ServiceDeps, account_id: str, studio_id: str, patch: Any, current: ProgramSettings
) -> ProgramSettings:
    """``current`` with the fields ``patch`` names replaced (``output`` merged field by field)."""
    if not isinstance(patch, Mapping):
        raise InvalidRequest("program must be an object.", param="program")
    validation.only_fields({f"program.{k}": v for k, v in patch.items()}, [f"program.{k}" for k in _PROGRAM_FIELDS])
    fields: dict[str, Any] = {}
    if "layout" in patch:
        try:
            fields["layout"] = Layout(patch["layout"])
        except ValueError:
            allowed = ", ".join(v.value for v in Layout)
            raise InvalidRequest(f"program.layout must be one of {allowed}.", param="program.layout") from None
    if "sources" in patch:
        fields["sources"] = await _sources(deps, account_id, studio_id, patch["sources"])
    if "output" in patch:
        fields["output"] = _output(patch["output"], current.output)
    if "passthrough" in patch:
        fields["passthrough"] = _flag(patch["passthrough"], "program.passthrough")
    if "record" in patch:
        fields["record"] = _flag(patch["record"], "program.record")
    if "slate" in patch:
        fields["slate"] = await _slate(deps, account_id, patch["slate"])
    return replace(current, **fields)


def program_source_ids(program: ProgramSettings, studio_sources: list[Source]) -> list[str]:
    """The sources placed in the program, in placement order (every source when none are named)."""
    if program.sources is None:
        return [s.id for s in studio_sources]
    present = {s.id for s in studio_sources}
    return [sid for sid in program.sources if sid in present]
