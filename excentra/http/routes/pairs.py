"""``/api/v1/pairs``: list, look up and (admins) add trading pairs (reference §1.8).

Each pair also reports its grid, ``price_step`` and ``quantity_step`` (an addition): the
engine accepts only prices and quantities on it, so clients need to know it.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from excentra.actors.bridge import Rejected
from excentra.db.database import Row
from excentra.db.market import list_pairs, pair_by_symbol, set_pair_active
from excentra.engine.precision import MAX_UNITS, GridError, PairSpec, plain
from excentra.http import fields as f
from excentra.http.auth import require_active_admin, require_admin
from excentra.http.errors import bad_request, not_found, rejection
from excentra.http.openapi import array_of, operation, schema
from excentra.http.render import dec, json, ts
from excentra.http.services import Services
from excentra.http.symbols import ASSET_PATTERN, HYPHEN_PATTERN, MAX_SYMBOL, asset_like, path_symbol

API = "/api/v1"
log = logging.getLogger("excentra.http.pairs")

SYMBOL = f.text_param("symbol", "Pair in hyphen form, e.g. BTC-USDT", location="path",
                      max_length=64, route_rules={"pattern": HYPHEN_PATTERN,
                                                  "maxLength": MAX_SYMBOL * 2})
ACTIVE = f.choice_param("active", ("true", "false"), None, "Only active (true) or inactive "
                                                           "(false) pairs; absent: all")
ADD = f.Body("AddTradingPairRequest", {
    "base_asset": f.string(description="An active asset, e.g. BTC",
                           route_rules={"pattern": ASSET_PATTERN}),
    "quote_asset": f.string(description="An active asset, e.g. USDT",
                            route_rules={"pattern": ASSET_PATTERN}),
    "price_step": f.decimal(positive=True, description=(
        "Prices must be multiples of it; itself a multiple of the quote asset's minor unit "
        "(an addition). With quantity_step, or neither: without both, the finest grid — "
        "every price with up to the quote's decimals, every quantity with up to the "
        "base's")),
    "quantity_step": f.decimal(positive=True, description=(
        "Quantities must be multiples of it; itself a multiple of the base asset's minor "
        "unit (an addition). With price_step, or neither")),
}, required=("base_asset", "quote_asset"))

STATUS = f.Body("SetTradingPairStatusRequest", {
    "is_active": f.boolean(description="false halts trading (no new orders; resting ones "
                                       "may be cancelled), true reopens it"),
}, required=("is_active",))

PAIR = schema("TradingPairsResponse", {
    "type": "object",
    "required": ["id", "base_asset", "quote_asset", "symbol", "is_active", "created_at"],
    "properties": {
        "id": {"type": "string", "format": "uuid"}, "base_asset": {"type": "string"},
        "quote_asset": {"type": "string"}, "symbol": {"type": "string"},
        "is_active": {"type": "boolean"},
        "created_at": {"type": "string", "format": "date-time"},
        "price_step": {"type": "string",
                       "description": "Prices must be multiples of it (an addition)"},
        "quantity_step": {"type": "string",
                          "description": "Quantities must be multiples of it (an addition)"}}})


def pair_json(row: Row) -> dict[str, Any]:
    price_step, quantity_step = row["price_step"], row["quantity_step"]
    if price_step is None or quantity_step is None:  # the engine derives both then
        spec = PairSpec.derive(row["symbol"], row["base_decimals"], row["quote_decimals"])
        price_step, quantity_step = spec.price_step, spec.quantity_step
    return {"id": str(row["id"]), "base_asset": row["base_asset"],
            "quote_asset": row["quote_asset"], "symbol": row["symbol"],
            "is_active": row["is_active"], "created_at": ts(row["created_at"]),
            "price_step": dec(price_step), "quantity_step": dec(quantity_step)}


@operation("get_active_trading_pairs", "Market Data", "The active trading pairs",
           responses={200: array_of(PAIR)})
async def get_active_pairs(request: Request) -> Response:
    rows = await list_pairs(request.state.services.db, active=True)
    return json([pair_json(r) for r in rows])


@operation("get_all_trading_pairs", "Admin", "All trading pairs, optionally by status",
           access="admin", params=[ACTIVE], responses={200: array_of(PAIR)})
async def get_all_pairs(request: Request) -> Response:
    require_admin(request)
    active = ACTIVE.get(request)
    rows = await list_pairs(request.state.services.db,
                            active=None if active is None else active == "true")
    return json([pair_json(r) for r in rows])


@operation("get_trading_pair", "Market Data", "One active trading pair", params=[SYMBOL],
           responses={200: PAIR, 404: "Error"})
async def get_pair(request: Request) -> Response:
    symbol = path_symbol(SYMBOL.get(request))
    row = await pair_by_symbol(request.state.services.db, symbol)
    if row is None or not row["is_active"]:
        raise not_found(f"Trading pair not found: {symbol}")
    return json(pair_json(row))


@operation("add_trading_pair", "Admin", "Add a trading pair; it trades at once",
           access="admin", body=ADD,
           responses={201: PAIR, 403: "Error", 409: "Error", 503: "Error", 504: "Error"})
async def add_pair(request: Request) -> Response:
    require_active_admin(request)
    body = await ADD.read(request)
    services: Services = request.state.services
    base, quote = (_asset(services, body[k]) for k in ("base_asset", "quote_asset"))
    if base == quote:  # the original accepted BTC/BTC; a pair needs two assets
        raise bad_request("Base and quote assets must be different")
    price_step, quantity_step = _steps(services, base, quote, body)
    outcome = await services.exchange.add_pair(base, quote, price_step=price_step,
                                               quantity_step=quantity_step)
    if isinstance(outcome, Rejected):  # a pair that exists: 409 (the core knows them all)
        raise rejection(outcome.code)
    return json(outcome, status=201)  # the stored pair, in ``pair_json``'s shape


def _steps(services: Services, base: str, quote: str,
           body: dict[str, Any]) -> tuple[Decimal | None, Decimal | None]:
    """The grid an admin asked for, checked here so a refusal names the rule; (None,
    None) for the finest grid."""
    price_step, quantity_step = body.get("price_step"), body.get("quantity_step")
    if (price_step is None) != (quantity_step is None):
        raise bad_request("price_step and quantity_step go together: give both or neither")
    if price_step is None or quantity_step is None:
        return None, None
    decimals = services.exchange.registry.decimals()
    for name, step, asset in (("price_step", price_step, quote),
                              ("quantity_step", quantity_step, base)):
        unit = Decimal(1).scaleb(-decimals[asset])
        if step <= 0 or step > MAX_UNITS or step % unit != 0:
            raise bad_request(f"{name} must be a positive multiple of {plain(unit)} "
                              f"({asset} has {decimals[asset]} decimals), at most "
                              f"{plain(MAX_UNITS)}")
    try:
        PairSpec(f"{base}/{quote}", decimals[base], decimals[quote], price_step,
                 quantity_step)
    except GridError as exc:  # the checks above are the rule; this is their backstop
        raise bad_request(str(exc)) from None
    return price_step, quantity_step


@operation("set_trading_pair_status", "Admin",
           "Halt or reopen a pair's trading (an addition)", access="admin",
           params=[SYMBOL], body=STATUS, responses={200: PAIR, 403: "Error", 404: "Error"})
async def set_pair_status(request: Request) -> Response:
    admin = require_active_admin(request)
    symbol = path_symbol(SYMBOL.get(request))
    body = await STATUS.read(request)
    services: Services = request.state.services
    if not await set_pair_active(services.db, symbol, body["is_active"]):
        raise not_found(f"Trading pair not found: {symbol}")
    services.exchange.set_pair_active(symbol, body["is_active"])
    log.info("pair status changed", extra={"pair": symbol, "active": body["is_active"],
                                           "by": admin.user_id})
    row = await pair_by_symbol(services.db, symbol)
    assert row is not None
    return json(pair_json(row))


def _asset(services: Services, text: str) -> str:
    """An active asset's code; trimmed as well as uppercased (the original only uppercased,
    so " BTC" was "not supported")."""
    code = text.strip(" ").upper()
    if not asset_like(text.strip(" ")) or services.catalog.active_asset(code) is None:
        raise bad_request(f"Asset is not supported: {code[:20]}")
    return code



routes = [
    Route(f"{API}/pairs/active", get_active_pairs, methods=["GET"]),
    Route(f"{API}/pairs", get_all_pairs, methods=["GET"]),
    Route(f"{API}/pairs", add_pair, methods=["POST"]),
    Route(f"{API}/pairs/{{symbol}}", get_pair, methods=["GET"]),
    Route(f"{API}/pairs/{{symbol}}", set_pair_status, methods=["PATCH"]),
]
