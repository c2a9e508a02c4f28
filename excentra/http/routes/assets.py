"""``/api/v1/assets``: list assets (public) and add one (admins) (reference §1.9)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from excentra.actors.bridge import Rejected
from excentra.db.database import Row
from excentra.db.market import list_assets
from excentra.http import fields as f
from excentra.http.auth import require_active_admin
from excentra.http.errors import bad_request, rejection
from excentra.http.openapi import array_of, operation, schema
from excentra.http.render import json, ts
from excentra.http.services import Services
from excentra.http.symbols import ASSET_PATTERN, asset_like

API = "/api/v1"
MAX_SYMBOL, MAX_NAME, MAX_DECIMALS = 10, 50, 18
"""The columns' limits (VARCHAR(10), VARCHAR(50)) and the ledger's largest scale."""
NAME_PATTERN = (f"^ *[^ \\u0000-\\u001f\\u007f-\\u009f](?:{f.TEXT_CHAR}{{0,{MAX_NAME - 2}}}"
                f"[^ \\u0000-\\u001f\\u007f-\\u009f])? *$")
"""A name that is 1 to ``MAX_NAME`` characters once trimmed of spaces."""

ADD = f.Body("AddAssetRequest", {
    "symbol": f.string(description="1 to 10 letters or digits; stored uppercased",
                       route_rules={"pattern": ASSET_PATTERN}),
    "name": f.string(description="1 to 50 characters once trimmed of spaces; stored as "
                                 "'Bitcoin cash'", route_rules={"pattern": NAME_PATTERN}),
    "decimals": f.integer(-32768, 32767, description="Decimal places, 0 to 18",
                          route_rules={"minimum": 0, "maximum": MAX_DECIMALS}),
}, required=("symbol", "name", "decimals"))

ASSET = schema("Asset", {
    "type": "object",
    "required": ["id", "symbol", "name", "decimals", "is_active", "created_at"],
    "properties": {
        "id": {"type": "string", "format": "uuid"}, "symbol": {"type": "string"},
        "name": {"type": "string"}, "decimals": {"type": "integer"},
        "is_active": {"type": "boolean"}, "coingecko_id": {"type": ["string", "null"]},
        "created_at": {"type": "string", "format": "date-time"}}})


def asset_json(row: Row) -> dict[str, Any]:
    return {"id": str(row["id"]), "symbol": row["symbol"], "name": row["name"],
            "decimals": row["decimals"], "is_active": row["is_active"],
            "coingecko_id": row["coingecko_id"], "created_at": ts(row["created_at"])}


@operation("get_all_assets", "Assets", "Every asset, active or not",
           responses={200: array_of(ASSET)})
async def get_assets(request: Request) -> Response:
    rows = await list_assets(request.state.services.db)
    return json([asset_json(r) for r in rows])


@operation("add_asset", "Assets", "Add an asset", access="admin", body=ADD,
           responses={201: ASSET, 403: "Error", 409: "Error", 503: "Error", 504: "Error"})
async def add_asset(request: Request) -> Response:
    require_active_admin(request)
    body = await ADD.read(request)
    services: Services = request.state.services
    symbol, name, decimals = _validated(body["symbol"], body["name"], body["decimals"])
    outcome = await services.exchange.add_asset(symbol, name, decimals)
    if isinstance(outcome, Rejected):  # an asset that exists: 409 (the core knows them all)
        raise rejection(outcome.code)
    return json(outcome, status=201)  # the stored asset, in ``asset_json``'s shape


def _validated(symbol: str, name: str, decimals: int) -> tuple[str, str, int]:
    """The original's checks and normalisation, plus limits it left to the database (a 500
    there): symbol and name are trimmed; 0 decimals is allowed (an indivisible asset; the
    original refused it with its "less than zero" message)."""
    symbol, name = symbol.strip(" "), name.strip(" ")
    if not symbol:
        raise bad_request("Asset symbol can not be empty, e.g 'BTC'")
    if len(symbol) > MAX_SYMBOL or not asset_like(symbol):
        raise bad_request(f"Asset symbol must be 1 to {MAX_SYMBOL} letters or digits, "
                          "e.g 'BTC'")
    if not name:
        raise bad_request("Asset name can not be empty, e.g 'BTC'")
    if len(name) > MAX_NAME:
        raise bad_request(f"Asset name can not be longer than {MAX_NAME} characters")
    if decimals < 0:
        raise bad_request("Asset decimals can not be less than zero")
    if decimals > MAX_DECIMALS:
        raise bad_request(f"Asset decimals can not be more than {MAX_DECIMALS}")
    return symbol.upper(), name[:1].upper() + name[1:].lower(), decimals


routes = [
    Route(f"{API}/assets", get_assets, methods=["GET"]),
    Route(f"{API}/assets", add_asset, methods=["POST"]),
]
