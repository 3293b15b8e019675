"""``trax``: serve, check, and operate a deployment from the shell.

Every command takes ``-c/--config FILE`` (or ``TRAX_CONFIG``) and ``--json``.
Errors go to stderr with a non-zero exit status and never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from trax.domain.errors import TraxError
from trax.redaction import scrub
from trax.settings import ConfigError, load_settings

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2

Handler = Callable[[argparse.Namespace], Awaitable[Any] | Any]


def _config_path(args: argparse.Namespace) -> str | None:
    return getattr(args, "config_pos", None) or getattr(args, "config", None) or os.environ.get("TRAX_CONFIG")


def _runtime(args: argparse.Namespace) -> Any:
    from trax.runtime import Runtime

    return Runtime(load_settings(_config_path(args)))


def _print(args: argparse.Namespace, data: Any, text: str | None = None) -> None:
    if getattr(args, "json", False) or text is None:
        print(json.dumps(data, indent=2, default=str))
    else:
        print(text)


# --- commands -------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from trax.server.serve import serve

    settings = load_settings(_config_path(args))
    return serve(settings)


def cmd_check(args: argparse.Namespace) -> int:
    from trax.runtime import Runtime

    rt = Runtime(load_settings(_config_path(args)), dry_run=True)  # validates and builds; writes nothing
    info = {"ok": True, "config": _config_path(args), **rt.describe()}
    lines = [f"{_config_path(args) or '(defaults)'}: OK"] + [f"  {k}: {v}" for k, v in rt.describe().items()]
    _print(args, info, "\n".join(lines))
    return EXIT_OK


async def cmd_accounts_create(args: argparse.Namespace) -> int:
    async with _runtime(args) as rt:
        acct = await rt.services.accounts.create(args.name)
    _print(args, {"id": acct.id, "name": acct.name}, f"{acct.id}\t{acct.name}")
    return EXIT_OK


async def cmd_accounts_list(args: argparse.Namespace) -> int:
    rows = []
    async with _runtime(args) as rt:
        cursor = None
        while True:
            page = await rt.services.accounts.list(limit=200, cursor=cursor)
            rows += [{"id": a.id, "name": a.name, "createdAt": a.created_at.isoformat()} for a in page.data]
            if not page.next_cursor:
                break
            cursor = page.next_cursor
    _print(args, rows, "\n".join(f"{r['id']}\t{r['name']}" for r in rows) or "(no accounts)")
    return EXIT_OK


def _key_view(key: Any) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "scopes": list(key.scopes),
        "createdAt": key.created_at.isoformat(),
        "lastUsedAt": key.last_used_at.isoformat() if key.last_used_at else None,
        "revokedAt": key.revoked_at.isoformat() if key.revoked_at else None,
    }


async def cmd_keys_create(args: argparse.Namespace) -> int:
    from trax.domain.errors import InvalidRequest
    from trax.domain.keys import RateLimitOverride
    from trax.services import Principal

    rate_limit = None
    if (args.rate_capacity is None) != (args.rate_refill is None):
        raise InvalidRequest("--rate-capacity and --rate-refill go together: set both or neither.")
    if args.rate_capacity is not None:
        # the operator's way to raise a key above the deployment's default (/v1 may only lower it)
        rate_limit = RateLimitOverride(capacity=args.rate_capacity, refill_per_second=args.rate_refill)
    async with _runtime(args) as rt:
        acct = await rt.services.accounts.get(args.account)
        key, secret = await rt.services.keys.create(
            Principal.operator(acct.id), name=args.name, scopes=args.scope, rate_limit=rate_limit
        )
    out: dict[str, Any] = {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "scopes": list(key.scopes),
        "secret": secret,
    }
    if key.rate_limit is not None:
        out["rateLimit"] = {"capacity": key.rate_limit.capacity, "refillPerSecond": key.rate_limit.refill_per_second}
    _print(args, out, f"{key.id}\t{key.name}\t{' '.join(key.scopes)}\nsecret (shown once): {secret}")
    return EXIT_OK


async def cmd_keys_list(args: argparse.Namespace) -> int:
    from trax.services import Principal

    rows = []
    async with _runtime(args) as rt:
        acct = await rt.services.accounts.get(args.account)
        op = Principal.operator(acct.id)
        cursor = None
        while True:
            page = await rt.services.keys.list(op, limit=200, cursor=cursor)
            rows += [_key_view(k) for k in page.data]
            if not page.next_cursor:
                break
            cursor = page.next_cursor
    text = "\n".join(
        f"{r['id']}\t{r['name']}\t{r['prefix']}…\t{' '.join(r['scopes'])}" + ("\trevoked" if r["revokedAt"] else "")
        for r in rows
    )
    _print(args, rows, text or "(no keys)")
    return EXIT_OK


async def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from trax.domain.errors import NotFound
    from trax.domain.keys import ApiKey
    from trax.services import Principal

    async with _runtime(args) as rt:
        key = await rt.storage.find_unique(ApiKey, "api_key.id", args.key_id)
        if key is None:
            raise NotFound(f"No API key {args.key_id!r}.")
        key = await rt.services.keys.revoke(Principal.operator(key.account_id), key.id)
    _print(args, _key_view(key), f"{key.id}\trevoked")
    return EXIT_OK


async def cmd_sources_stream_key(args: argparse.Namespace) -> int:
    from trax.domain.errors import NotFound
    from trax.domain.sources import Source
    from trax.ingest.urls import encoder_fields, stream_key_urls
    from trax.services import Principal

    async with _runtime(args) as rt:
        acct = await rt.services.accounts.get(args.account)
        src = await rt.storage.get(Source, acct.id, args.source_id)
        if src is None:
            raise NotFound(f"No source {args.source_id!r} in account {args.account!r}.")
        src, key = await rt.services.sources.rotate_stream_key(Principal.operator(acct.id), src.studio_id, src.id)
        urls = stream_key_urls(rt.settings.ingest, src.path, key)
    obs = encoder_fields(urls)
    out = {"sourceId": src.id, "path": src.path, "streamKey": key, "urls": urls, "obs": obs}
    lines = [f"source:     {src.id} ({src.path})", f"stream key (shown once): {key}"]
    lines += [f"{name + ':':11} {url}" for name, url in urls.items()]
    for name, pair in obs.items():
        lines += [f"{name} server:     {pair['server']}", f"{name} stream key: {pair['streamKey']}"]
    _print(args, out, "\n".join(lines))
    return EXIT_OK


def cmd_plugins(args: argparse.Namespace) -> int:
    from trax.plugin_manager import describe_plugins, make_plugin_manager

    settings = load_settings(_config_path(args)) if _config_path(args) else None
    rows = describe_plugins(make_plugin_manager(settings))
    text = "\n".join(
        f"{r['name']}{' (' + r['distribution'] + ')' if r['distribution'] else ''}: {', '.join(r['provides']) or '-'}"
        for r in rows
    )
    _print(args, rows, text)
    return EXIT_OK


async def cmd_loopback_link(args: argparse.Namespace) -> int:
    async with _runtime(args) as rt:
        acct = await rt.services.accounts.get(args.account)
        conn = await rt.services.connections.link(
            acct.id,
            platform="loopback",
            display_name=args.display_name,
            external_account_id=args.external_id or args.display_name,
        )
    _print(args, {"id": conn.id, "platform": conn.platform, "displayName": conn.display_name}, conn.id)
    return EXIT_OK


async def cmd_loopback_chat(args: argparse.Namespace) -> int:
    from trax.domain.connections import Connection
    from trax.domain.errors import NotFound

    async with _runtime(args) as rt:
        acct = await rt.services.accounts.get(args.account)
        conn = await rt.storage.get(Connection, acct.id, args.connection)
        if conn is None:
            raise NotFound(f"No connection {args.connection!r} in that account.")
        msg = await rt.services.chat.receive(conn, args.studio, text=args.text, author_name=args.author)
    _print(args, {"id": msg.id, "studioId": msg.studio_id, "text": msg.text}, msg.id)
    return EXIT_OK


# --- parser -------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a sub-command's unset option must not overwrite one given before it
    common.add_argument(
        "-c", "--config", metavar="FILE", default=argparse.SUPPRESS, help="deployment file (default: $TRAX_CONFIG)"
    )
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")

    parser = argparse.ArgumentParser(prog="trax", description=__doc__, parents=[common])
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler: Handler, help_: str, parent: Any = sub) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help_, parents=[common], description=help_)
        p.set_defaults(handler=handler)
        return p

    p = add("serve", cmd_serve, "run the /v1 API and the enabled ingest listeners")
    p.add_argument("config_pos", nargs="?", metavar="CONFIG")
    p = add("check", cmd_check, "validate a deployment file and report the chosen plugins")
    p.add_argument("config_pos", nargs="?", metavar="CONFIG")

    accounts = sub.add_parser("accounts", help="tenants").add_subparsers(dest="sub", required=True)
    add("create", cmd_accounts_create, "create an account", accounts).add_argument("name")
    add("list", cmd_accounts_list, "list accounts", accounts)

    keys = sub.add_parser("keys", help="API keys").add_subparsers(dest="sub", required=True)
    p = add("create", cmd_keys_create, "create a key; its secret is printed once", keys)
    p.add_argument("--account", required=True, help="account id or name")
    p.add_argument("--name", required=True)
    p.add_argument("--scope", action="append", required=True, help="repeat for several scopes")
    p.add_argument("--rate-capacity", type=int, help="the key's own bucket size (with --rate-refill)")
    p.add_argument("--rate-refill", type=float, help="the key's own refill per second (with --rate-capacity)")
    add("list", cmd_keys_list, "list an account's keys (never their secrets)", keys).add_argument(
        "--account", required=True
    )
    add("revoke", cmd_keys_revoke, "revoke a key", keys).add_argument("key_id")

    sources = sub.add_parser("sources", help="a studio's sources").add_subparsers(dest="sub", required=True)
    p = add(
        "stream-key",
        cmd_sources_stream_key,
        "create or rotate a source's static stream key; printed once, the old key stops at once",
        sources,
    )
    p.add_argument("source_id")
    p.add_argument("--account", required=True, help="the account (name or id) that owns the source")

    add("plugins", cmd_plugins, "what plugins are installed and what they register")

    loop = sub.add_parser("loopback", help="the development platform").add_subparsers(dest="sub", required=True)
    p = add("link", cmd_loopback_link, "link a loopback platform account", loop)
    p.add_argument("--account", required=True)
    p.add_argument("--display-name", required=True)
    p.add_argument("--external-id")
    p = add("chat", cmd_loopback_chat, "deliver an inbound chat message", loop)
    p.add_argument("--account", required=True)
    p.add_argument("--connection", required=True)
    p.add_argument("--studio", required=True)
    p.add_argument("--text", required=True)
    p.add_argument("--author", default="viewer")

    for hook in _extra_commands():
        hook(sub, add)
    return parser


def _extra_commands() -> list[Callable[[Any, Callable[..., argparse.ArgumentParser]], None]]:
    """Command groups that live beside the code they drive (e.g. ``trax tokens``)."""
    from trax.ingest.cli import register as register_tokens

    return [register_tokens]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.handler(args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result or 0)
    except ConfigError as exc:
        return _fail(args, "config_error", str(exc))
    except TraxError as exc:
        return _fail(args, exc.code, exc.message)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `trax ... | head`: the reader left; say nothing more, like other tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # an operator gets one line, not a traceback; TRAX_DEBUG=1 shows it
        if os.environ.get("TRAX_DEBUG") == "1":
            raise
        return _fail(args, "internal_error", scrub(f"{type(exc).__name__}: {exc}"))


def _fail(args: argparse.Namespace, code: str, message: str) -> int:
    if getattr(args, "json", False):
        print(json.dumps({"error": {"code": code, "message": message}}), file=sys.stderr)
    elif code == "config_error":
        print(f"trax: {message}", file=sys.stderr)
    else:
        print(f"trax: {code}: {message}", file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
