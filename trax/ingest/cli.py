"""``trax tokens ...``: mint media tokens, show the JWKS, rotate and retire signing keys."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from trax.ingest.urls import encoder_fields
from trax.settings import load_settings


def _runtime(args: argparse.Namespace) -> Any:
    from trax.cli import _config_path
    from trax.runtime import Runtime

    return Runtime(load_settings(_config_path(args)))


def _out(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2) if getattr(args, "json", False) else text)


async def cmd_mint(args: argparse.Namespace) -> int:
    async with _runtime(args) as rt:
        creds = await rt.media_tokens.mint(path=args.path, action=args.action, audience=args.audience, ttl=args.ttl)
    data = creds.to_json()
    data["obs"] = encoder_fields(creds.urls)  # OBS-style Server + Stream Key per RTMP(S) transport
    lines = [f"token:   {creds.token}", f"expires: {data['expiresAt']}", f"path:    {creds.path} ({creds.action})"]
    lines += [f"{name + ':':8} {url}" for name, url in creds.urls.items()]
    for name, pair in data["obs"].items():
        lines += [f"{name} server:     {pair['server']}", f"{name} stream key: {pair['streamKey']}"]
    _out(args, data, "\n".join(lines))
    return 0


async def cmd_jwks(args: argparse.Namespace) -> int:
    async with _runtime(args) as rt:
        jwks = rt.media_tokens.jwks()
    print(json.dumps(jwks, indent=2))
    return 0


async def cmd_keys(args: argparse.Namespace) -> int:
    async with _runtime(args) as rt:
        keys = rt.media_tokens.keys()
    _out(args, keys, "\n".join(f"{k['kid']}{'  (signing)' if k['signing'] else ''}" for k in keys))
    return 0


async def cmd_rotate(args: argparse.Namespace) -> int:
    async with _runtime(args) as rt:
        kid = await rt.media_tokens.rotate()
    _out(args, {"kid": kid}, f"new signing key {kid}; older keys stay published until retired")
    return 0


async def cmd_retire(args: argparse.Namespace) -> int:
    async with _runtime(args) as rt:
        await rt.media_tokens.retire(args.kid)
    _out(args, {"kid": args.kid, "retired": True}, f"retired {args.kid}")
    return 0


def _ttl(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("ttl must be a whole number of seconds") from None


def register(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    tokens = sub.add_parser("tokens", help="media session tokens").add_subparsers(dest="sub", required=True)
    p = add("mint", cmd_mint, "mint a media token for one action on one stream path", tokens)
    p.add_argument("--path", required=True, help="stream path, e.g. inputs/whip-<uuid>")
    p.add_argument("--action", required=True, choices=("publish", "read"))
    p.add_argument(
        "--audience",
        help="trax-ingest (SRT/RTMP), trax-talk (WHIP) or trax-read (WHEP); default: every protocol for the action",
    )
    p.add_argument("--ttl", type=_ttl, help="lifetime in seconds")
    add("jwks", cmd_jwks, "print the public JWKS (as served at /.well-known/jwks.json)", tokens)
    add("keys", cmd_keys, "list the published signing keys", tokens)
    add("rotate", cmd_rotate, "add a new signing key (older keys stay published)", tokens)
    add("retire", cmd_retire, "unpublish an old signing key (its tokens stop working)", tokens).add_argument("kid")
