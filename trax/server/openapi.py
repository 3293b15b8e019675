"""The /v1 OpenAPI document: Litestar's 3.1 output turned into a valid 3.0.3 document.

Litestar 2.x can only emit OpenAPI 3.1 (JSON Schema 2020-12 idioms); the
/v1 document is OpenAPI 3.0.x (docs/api.md, "OpenAPI"), so :func:`to_openapi_30` rewrites the
3.1 constructs 3.0 lacks. :func:`finish` then adds what Litestar cannot say:
the ``X-Request-Id`` header on every response, the rate-limit headers, the
``Location`` header on creates and each operation's ``x-required-scopes``.
"""

from __future__ import annotations

import copy
import re
from typing import Any

_DROP_KEYS = frozenset(
    {
        "$schema",
        "$id",
        "$anchor",
        "$defs",
        "$comment",
        "if",
        "then",
        "else",
        "unevaluatedProperties",
        "unevaluatedItems",
        "dependentRequired",
        "dependentSchemas",
        "contains",
        "minContains",
        "maxContains",
        "propertyNames",
        "contentSchema",
    }
)
_SCHEMA_LIST_KEYS = ("oneOf", "anyOf", "allOf")
_SCHEMA_DICT_KEYS = ("properties", "patternProperties")
_SCHEMA_ONE_KEYS = ("items", "additionalProperties", "not")


def _is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null" and len(schema) == 1


def _schema_30(schema: Any, components: dict[str, Any]) -> Any:
    """One JSON Schema 2020-12 object as an OpenAPI 3.0 Schema Object."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROP_KEYS:
            continue
        if key in _SCHEMA_LIST_KEYS and isinstance(value, list):
            out[key] = [_schema_30(v, components) for v in value]
        elif key in _SCHEMA_DICT_KEYS and isinstance(value, dict):
            out[key] = {k: _schema_30(v, components) for k, v in value.items()}
        elif key in _SCHEMA_ONE_KEYS and isinstance(value, dict):
            out[key] = _schema_30(value, components)
        else:
            out[key] = value
    if "examples" in out:
        examples = out.pop("examples")
        if isinstance(examples, list) and examples and "example" not in out:
            out["example"] = examples[0]
    if "const" in out:
        out["enum"] = [out.pop("const")]
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), int | float) and not isinstance(out.get(bound), bool):
            out[plain] = out.pop(bound)
            out[bound] = True
    if "prefixItems" in out:
        items = [_schema_30(v, components) for v in out.pop("prefixItems")]
        out["items"] = items[0] if len(set(map(repr, items))) == 1 else {"anyOf": items}
        out.setdefault("minItems", len(items))
        out.setdefault("maxItems", len(items))
    if "contentEncoding" in out or "contentMediaType" in out:
        encoding = out.pop("contentEncoding", None)
        out.pop("contentMediaType", None)
        out.setdefault("format", "byte" if encoding == "base64" else "binary")
    if isinstance(out.get("type"), list):
        types = [t for t in out["type"] if t != "null"]
        if len(types) < len(out["type"]):
            out["nullable"] = True
        if len(types) == 1:
            out["type"] = types[0]
        else:
            del out["type"]
            if types:
                out["anyOf"] = [{"type": t} for t in types]
    for key in ("oneOf", "anyOf"):
        arms = out.get(key)
        if not isinstance(arms, list) or not any(_is_null(a) for a in arms):
            continue
        rest = [a for a in arms if not _is_null(a)]
        del out[key]
        if len(rest) == 1:
            only = rest[0]
            if "$ref" in only:
                # 3.0 ignores siblings of $ref, and nullable needs a type next to it
                target = _ref_target(only["$ref"], components)
                out.update({"allOf": [only], "nullable": True})
                if isinstance(target, dict) and isinstance(target.get("type"), str):
                    out["type"] = target["type"]
            else:
                out.update(only)
                out["nullable"] = True
        elif rest:
            out[key] = rest
            out["nullable"] = True
        else:
            out["nullable"] = True
    for key in ("oneOf", "anyOf"):
        arms = out.get(key)
        if isinstance(arms, list) and len(arms) == 1 and isinstance(arms[0], dict) and "$ref" not in arms[0]:
            # a msgspec UNSET arm leaves a one-armed union behind
            del out[key]
            for k, v in arms[0].items():
                out.setdefault(k, v)
    if out.get("required") == []:
        del out["required"]
    return out


def _ref_target(ref: str, components: dict[str, Any]) -> Any:
    prefix = "#/components/schemas/"
    return components.get(ref[len(prefix) :]) if ref.startswith(prefix) else None


def _walk_operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    ops = []
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if method in ("get", "put", "post", "delete", "patch", "options", "head", "trace") and isinstance(op, dict):
                ops.append((path, method, op))
    return ops


def _convert_content(content: dict[str, Any], components: dict[str, Any]) -> None:
    for media in content.values():
        if isinstance(media, dict) and "schema" in media:
            media["schema"] = _schema_30(media["schema"], components)


def _nice_name(name: str) -> str:
    """``trax.server.wire.StudioOut`` style component names → ``Studio``."""
    short = name.rsplit(".", 1)[-1]
    short = re.sub(r"[^A-Za-z0-9]+", "", short)
    for suffix in ("Out",):
        if short.endswith(suffix) and len(short) > len(suffix):
            short = short[: -len(suffix)]
    return short or name


def to_openapi_30(doc31: dict[str, Any]) -> dict[str, Any]:
    """A 3.0.3 copy of a Litestar 3.1 document."""
    doc = copy.deepcopy(doc31)
    doc["openapi"] = "3.0.3"
    for key in ("webhooks", "jsonSchemaDialect"):
        doc.pop(key, None)
    info = doc.get("info", {})
    info.pop("summary", None)
    if isinstance(info.get("license"), dict):
        info["license"].pop("identifier", None)
    components = doc.setdefault("components", {})
    schemas: dict[str, Any] = components.get("schemas", {})
    raw = dict(schemas)
    components["schemas"] = {name: _schema_30(s, raw) for name, s in schemas.items()}
    for _, _, op in _walk_operations(doc):
        for param in op.get("parameters", []):
            if "schema" in param:
                param["schema"] = _schema_30(param["schema"], raw)
                if not param.get("required"):
                    # an optional query parameter is omitted, never sent as null
                    param["schema"].pop("nullable", None)
            if "examples" in param and isinstance(param["examples"], dict) and not param["examples"]:
                del param["examples"]
        body = op.get("requestBody")
        if isinstance(body, dict):
            _convert_content(body.get("content", {}), raw)
        for resp in op.get("responses", {}).values():
            if isinstance(resp, dict):
                _convert_content(resp.get("content", {}), raw)
                for header in resp.get("headers", {}).values():
                    if isinstance(header, dict) and "schema" in header:
                        header["schema"] = _schema_30(header["schema"], raw)
    _rename_components(doc)
    return doc


def _rename_components(doc: dict[str, Any]) -> None:
    schemas: dict[str, Any] = doc["components"].get("schemas", {})
    renames: dict[str, str] = {}
    taken: set[str] = set()
    for name in sorted(schemas):
        new = _nice_name(name)
        while new in taken:
            new += "X"
        taken.add(new)
        renames[name] = new
    doc["components"]["schemas"] = {renames[n]: s for n, s in schemas.items()}
    for name, schema in doc["components"]["schemas"].items():
        if isinstance(schema, dict) and "title" in schema:
            schema["title"] = name  # codegen tools name models after the title

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                old = ref[len("#/components/schemas/") :]
                node["$ref"] = "#/components/schemas/" + renames.get(old, old)
            for v in node.values():
                fix(v)
        elif isinstance(node, list):
            for v in node:
                fix(v)
        return node

    fix(doc)


HEADERS = {
    "XRequestId": {
        "description": "The request's id (the client's X-Request-Id when well formed); equals error.requestId.",
        "required": True,
        "schema": {"type": "string", "example": "req_01JDQ4V1ZQ7Y9N6X3W2T8R5K0M"},
    },
    "RateLimitLimit": {"description": "Bucket capacity.", "schema": {"type": "integer"}},
    "RateLimitRemaining": {"description": "Whole tokens left.", "schema": {"type": "integer"}},
    "RateLimitReset": {"description": "Seconds until the bucket is full.", "schema": {"type": "integer"}},
    "RetryAfter": {"description": "Whole seconds (>= 1) to wait before retrying.", "schema": {"type": "integer"}},
    "Location": {"description": "Where the created object lives.", "schema": {"type": "string"}},
    "Allow": {"description": "The methods this path supports.", "schema": {"type": "string"}},
}


RAW_BODY = {
    "required": True,
    "description": "The raw bytes, exactly sizeBytes long.",
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
}


def finish(doc: dict[str, Any], opts: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    """Headers on every response, scopes per operation, raw bodies Litestar cannot see."""
    doc.setdefault("components", {})["headers"] = HEADERS
    for path, method, op in _walk_operations(doc):
        opt = opts.get((path, method.upper()), {})
        scope = opt.get("scope")
        if opt.get("raw_body"):
            op["requestBody"] = RAW_BODY
        elif opt.get("body") == "json-optional" and isinstance(op.get("requestBody"), dict):
            op["requestBody"]["required"] = False
        op["x-required-scopes"] = [scope] if scope else []
        if scope is None and not op.get("security"):
            op["security"] = []
        for status, resp in op.get("responses", {}).items():
            if not isinstance(resp, dict):
                continue
            headers = resp.setdefault("headers", {})
            headers["X-Request-Id"] = {"$ref": "#/components/headers/XRequestId"}
            if status != "429" and scope is not None:
                for name, ref in (
                    ("RateLimit-Limit", "RateLimitLimit"),
                    ("RateLimit-Remaining", "RateLimitRemaining"),
                    ("RateLimit-Reset", "RateLimitReset"),
                ):
                    headers[name] = {"$ref": f"#/components/headers/{ref}"}
            if status in ("429", "503"):
                headers["Retry-After"] = {"$ref": "#/components/headers/RetryAfter"}
            if status == "201":
                headers["Location"] = {"$ref": "#/components/headers/Location"}
            if status == "405":
                headers["Allow"] = {"$ref": "#/components/headers/Allow"}
    return doc


def apply_deployment(doc: dict[str, Any], *, content_types: list[str], max_upload_bytes: int) -> dict[str, Any]:
    """What this deployment's configuration allows, so clients (and fuzzers) see the real limits."""
    props = doc.get("components", {}).get("schemas", {}).get("UploadCreate", {}).get("properties", {})
    if "contentType" in props:
        props["contentType"]["enum"] = list(content_types)
    if "sizeBytes" in props:
        props["sizeBytes"]["maximum"] = max_upload_bytes
    return doc
