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


async def test_links_lead_from_a_new_id_to_the_operations_on_it(api: Api) -> None:
    """Each link names an operation of the document and one of its path parameters, and
    reads the id from where the response's schema puts it."""
    doc = (await api.client.get("/api-docs/openapi.json")).json()
    by_id = {op["operationId"]: op for ops in doc["paths"].values() for op in ops.values()}
    found = {}
    for op in by_id.values():
        for status, response in op["responses"].items():
            for link in response.get("links", {}).values():
                target = by_id[link["operationId"]]
                params = {p["name"] for p in target["parameters"] if p["in"] == "path"}
                assert set(link["parameters"]) <= params, link
                found[(op["operationId"], status, link["operationId"])] = \
                    link["parameters"]
    order_id = {"order_id": "$response.body#/order_id"}
    first = {"order_id": "$response.body#/data/0/id"}
    withdrawal = {"withdrawal_id": "$response.body#/id"}
    assert found == {
        ("place_order", "200", "get_order_by_id"): order_id,
        ("place_order", "200", "cancel_order"): order_id,
        ("get_orders", "200", "get_order_by_id"): first,
        ("get_orders", "200", "cancel_order"): first,
        ("request_withdrawal", "201", "approve_withdrawal"): withdrawal,
        ("request_withdrawal", "201", "reject_withdrawal"): withdrawal,
    }
