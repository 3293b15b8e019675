"""Stream paths: the routing key every ingest protocol shares (docs/ingest.md).

Public grammar ``inputs/<kind>-<uuid>``; matching is exact and case-sensitive.
"""

from __future__ import annotations

import re
import uuid

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
SOURCE_PATH_RE = re.compile(rf"^inputs/(srt|rtmp|whip|media)-{_UUID}$")
PROGRAM_PATH_RE = re.compile(r"^studios/studio_[0-9A-HJKMNP-TV-Z]{26}/program$")


def new_source_path(kind: str) -> str:
    return f"inputs/{kind}-{uuid.uuid4()}"


def is_source_path(path: str) -> bool:
    return bool(SOURCE_PATH_RE.match(path))


def program_path(studio_id: str) -> str:
    return f"studios/{studio_id}/program"


def is_valid_path(path: str) -> bool:
    return bool(SOURCE_PATH_RE.match(path) or PROGRAM_PATH_RE.match(path))
