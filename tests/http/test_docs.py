"""The API documents itself: the OpenAPI 3.1 document is generated from the routes, and
``/docs`` works with no internet (every asset it loads is served by this server)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.http.conftest import Api

pytestmark = pytest.mark.asyncio

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / \
    "excentra-openapi.json"


def operations(document: dict[str, object]) -> set[tuple[str, str]]:
    paths = document["paths"]
    assert isinstance(paths, dict)
    return {(method.upper(), path) for path, ops in paths.items() for method in ops}


async def test_every_operation_is_documented_with_schemas(api: Api) -> None:
    r = await api.client.get("/api-docs/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"] == "3.1.0"
    ours = operations(doc)
    assert ("GET", "/api/v1/candles/{symbol}") in ours
    assert ("GET", "/metrics") in ours
    if REFERENCE.is_file():  # the original's document, beside the checkout
        assert operations(json.loads(REFERENCE.read_text())) <= ours
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["operationId"], (method, path)
            success = [s for s in op["responses"] if s.startswith("2")]
            assert success, (method, path)
            if method in ("post", "patch") and success != ["204"]:
                bodies = op["responses"][success[0]]
                assert "content" in bodies, (method, path)
            if "requestBody" in op:
                ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"]


async def test_docs_page_loads_only_local_assets(api: Api) -> None:
    r = await api.client.get("/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    sources = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert sources
    for source in sources:
        assert source.startswith("/"), f"{source} would need the internet"
        asset = await api.client.get(source)
        assert asset.status_code == 200, source
        assert len(asset.content) > 1000, source
