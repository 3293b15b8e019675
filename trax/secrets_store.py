"""The server secret: from settings, or a key file created on first start."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from trax.settings import ConfigError, SecuritySettings

MIN_SECRET_BYTES = 32


def load_server_key(security: SecuritySettings, *, create: bool = True) -> bytes:
    """The deployment's secret. With ``create=False`` a missing key file is left missing and a
    throwaway key is returned (for validating a deployment without touching the disk)."""
    if security.secret_key is not None:
        key = security.secret_key.get_secret_value().encode()
        if len(key) < MIN_SECRET_BYTES:
            raise ConfigError(f"security.secret_key: must be at least {MIN_SECRET_BYTES} characters")
        return key
    if not create and not security.secret_key_file.exists():
        return secrets.token_urlsafe(48).encode()
    return _key_file(security.secret_key_file)


def _key_file(path: Path) -> bytes:
    try:
        data = path.read_bytes().strip()
    except FileNotFoundError:
        return _create_key_file(path)
    except OSError as exc:
        raise ConfigError(f"security.secret_key_file: cannot read {path}: {exc.strerror}") from None
    if len(data) < MIN_SECRET_BYTES:
        raise ConfigError(f"security.secret_key_file: {path} holds fewer than {MIN_SECRET_BYTES} bytes")
    return data


def _create_key_file(path: Path) -> bytes:
    """Write a fresh key next to ``path`` and link it into place: a process starting at the same
    moment either wins the link or reads the complete key the winner wrote, never a half-written file."""
    fresh = secrets.token_urlsafe(48).encode()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(fresh + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:  # another process won the race: use theirs
            return _key_file(path)
    except OSError as exc:
        raise ConfigError(f"security.secret_key_file: cannot create {path}: {exc.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return fresh
