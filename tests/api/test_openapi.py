"""The served document is OpenAPI 3.0, complete, and names each operation's scope."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV30SpecValidator

from tests.api.catalog import META_ROUTES, ROUTES, UPLOAD_ROUTE
from tests.api.conftest import Api

pytestmark = pytest.mark.anyio


@pytest.fixture
async def doc(api: Api) -> dict[str, Any]:
    r = await api.client.get("/v1/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = r.json()
    return body


async def test_valid_openapi_30(doc: dict[str, Any]) -> None:
    assert doc["openapi"] == "3.0.3"
    assert list(OpenAPIV30SpecValidator(doc).iter_errors()) == []
    validate(doc)
    text = str(doc)
    for marker in ("'const'", "'prefixItems'", "'examples': [", "'type': 'null'", "'$defs'"):
        assert marker not in text, marker


async def test_every_route_documented_with_scope(doc: dict[str, Any]) -> None:
    ops = {(m.upper(), p): op for p, item in doc["paths"].items() for m, op in item.items()}
    for route in ROUTES:
        op = ops[(route.method, route.openapi_path)]
        assert op["x-required-scopes"] == [route.scope]
        assert "security" not in op  # the document-wide bearer-or-X-API-Key requirement applies
    for method, path in (*META_ROUTES, UPLOAD_ROUTE):
        assert ops[(method, path)]["security"] == []
        assert ops[(method, path)]["x-required-scopes"] == []
    assert len({op["operationId"] for op in ops.values()}) == len(ops)
    assert all(op["operationId"][0].islower() and op["operationId"].isalnum() for op in ops.values())


async def test_security_schemes_errors_and_headers(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKeyAuth"] == {**schemes["apiKeyAuth"], "type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert {"bearerAuth": []} in doc["security"] and {"apiKeyAuth": []} in doc["security"]
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            codes = set(op["responses"])
            assert {"400", "429", "500"} <= codes, (method, path)
            for code, resp in op["responses"].items():
                assert resp["headers"]["X-Request-Id"] == {"$ref": "#/components/headers/XRequestId"}
                if code.startswith(("4", "5")) and (path, code) != ("/v1/health", "503"):
                    assert resp["content"]["application/json"]["schema"] == envelope, (method, path, code)
            if op["x-required-scopes"]:
                assert {"401", "403", "404"} <= codes
            if method in ("post", "put", "patch", "delete"):
                assert "503" in codes
            if "201" in codes:
                assert "Location" in op["responses"]["201"]["headers"]
    health = doc["paths"]["/v1/health"]["get"]["responses"]["503"]
    assert health["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Health"}
    body = doc["components"]["schemas"]["ErrorBody"]
    assert set(body["required"]) == {"code", "message", "requestId"}
    assert doc["components"]["schemas"]["StudioCreate"]["additionalProperties"] is False
    upload = doc["components"]["schemas"]["UploadCreate"]["properties"]
    assert "video/mp4" in upload["contentType"]["enum"] and upload["sizeBytes"]["maximum"] >= 1
    assert doc["components"]["schemas"]["Studio"]["properties"]["createdAt"]["format"] == "date-time"
    assert any("example" in s.get("properties", {}).get("name", {}) for s in doc["components"]["schemas"].values())
