"""``/api/v1/orders``: place, list, get, cancel (reference §1.4, API.md)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from excentra.actors.bridge import Rejected
from excentra.db.database import Row
from excentra.db.orders import list_orders, order_by_id
from excentra.engine import OrderType, RejectCode, Side, TimeInForce
from excentra.engine.precision import PairSpec, plain
from excentra.http import fields as f
from excentra.http.auth import require_active, require_user
from excentra.http.errors import bad_request, not_found, rejection, unprocessable
from excentra.http.openapi import Link, array_of, operation, ref, schema
from excentra.http.render import dec, json, ts
from excentra.http.services import Services
from excentra.http.symbols import FILTER_PATTERN, MAX_SYMBOL, SLASH_PATTERN, slash_symbol
from excentra.http.validate import check_places, pair_filter
from excentra.registry import PairInfo

API = "/api/v1"
STATUSES = ("open", "partially_filled", "filled", "cancelled")

def _kind_is(kind: str) -> dict[str, Any]:
    return {"required": ["order_type"], "properties": {"order_type": {"const": kind}}}


PLACE = f.Body("PlaceOrderRequest", {
    "symbol": f.string(MAX_SYMBOL * 2, description="Pair in slash form, e.g. BTC/USDT",
                       route_rules={"pattern": SLASH_PATTERN}),
    "side": f.enum("buy", "sell"),
    "order_type": f.enum("limit", "market"),
    "price": f.decimal(nullable=True, positive=True,
                       description="Limit price (quote); absent for market"),
    "quantity": f.decimal(positive=True,
                          description="Base quantity; for a market buy the quote budget"),
    "client_order_id": f.string(36, nullable=True,
                                description="Your id for the order: a retry with the same "
                                            "id returns the first order, never a second"),
    "time_in_force": f.enum("GTC", "IOC", "FOK", nullable=True,
                            description="Limit orders: GTC (default), IOC or FOK"),
    "post_only": f.boolean(nullable=True,
                           description="Limit orders: reject instead of taking liquidity"),
}, required=("symbol", "side", "order_type", "quantity"), extra={"allOf": [
    # what ``_check_amounts`` and the limit-only options refuse with their 400s
    {"if": _kind_is("limit"), "then": {"required": ["price"],
                                    "properties": {"price": {"type": ["string", "number"]}}}},
    {"if": _kind_is("market"), "then": {"properties": {
        "price": {"type": "null"}, "time_in_force": {"type": "null"},
        "post_only": {"enum": [False, None]}}}},
]})

STATUS_PARAM = f.status_list_param(STATUSES)
PAIR_PARAM = f.text_param("pair", "Pair filter in hyphen form, e.g. BTC-USDT",
                          max_length=MAX_SYMBOL * 2, route_rules={"pattern": FILTER_PATTERN})
ORDER_ID = f.uuid_param("order_id", "The order's id")

_TRADE_INFO = schema("TradeInfo", {
    "type": "object", "required": ["price", "quantity"],
    "properties": {"price": {"type": "string"}, "quantity": {"type": "string"}}})
_STATUS = schema("DBOrderStatus", {"type": "string", "enum": list(STATUSES)})
PLACED = schema("PlaceOrderResponse", {
    "type": "object",
    "required": ["order_id", "status", "filled_quantity", "remaining_quantity", "trades"],
    "properties": {"order_id": {"type": "string", "format": "uuid"}, "status": ref(_STATUS),
                   "filled_quantity": {"type": "string"},
                   "remaining_quantity": {"type": "string"},
                   "trades": array_of(_TRADE_INFO)}})
ORDER = schema("OrderResponse", {
    "type": "object",
    "required": ["id", "symbol", "side", "order_type", "price", "quantity",
                 "remaining_quantity", "status", "created_at", "updated_at"],
    "properties": {
        "id": {"type": "string", "format": "uuid"}, "symbol": {"type": "string"},
        "side": {"type": "string", "enum": ["buy", "sell"]},
        "order_type": {"type": "string", "enum": ["limit", "market"]},
        "price": {"type": ["string", "null"]}, "quantity": {"type": "string"},
        "remaining_quantity": {"type": "string"}, "filled_quantity": {"type": "string"},
        "status": ref(_STATUS), "client_order_id": {"type": ["string", "null"]},
        "time_in_force": {"type": "string", "enum": ["GTC", "IOC", "FOK"]},
        "post_only": {"type": "boolean"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"}}})
def _order_links(source: str) -> dict[str, Link]:
    """The operations on one order, its id read from ``source`` in a response."""
    return {"GetOrder": Link("get_order_by_id", {"order_id": source}),
            "CancelOrder": Link("cancel_order", {"order_id": source})}


ORDER_PAGE = schema("PaginatedResponse_OrderResponse", {
    "type": "object", "required": ["data", "page", "limit", "total"],
    "properties": {"data": array_of(ORDER), "page": {"type": "integer"},
                   "limit": {"type": "integer"}, "total": {"type": "integer"}}})


def order_json(row: Row, spec: PairSpec | None) -> dict[str, Any]:
    """An order as every answer shows it, at its pair's scale (``at_pair_scale``)."""
    return at_pair_scale({
        "id": str(row["id"]), "symbol": row["symbol"], "side": row["side"],
            "order_type": row["order_type"], "price": dec(row["price"]),
            "quantity": dec(row["quantity"]),
            "remaining_quantity": dec(row["remaining_quantity"]),
            "filled_quantity": dec(row["filled_quantity"]), "status": row["status"],
            "client_order_id": row["client_order_id"],
            "time_in_force": row["time_in_force"], "post_only": bool(row["post_only"]),
            "created_at": ts(row["created_at"]), "updated_at": ts(row["updated_at"])}, spec)


def at_pair_scale(order: dict[str, Any], spec: PairSpec | None) -> dict[str, Any]:
    """``order`` with its amounts written as the book and trades write them: the price at
    the price step's scale (``"65000.00"``, however it was sent), quantities at the
    quantity step's (a market buy's quantity and remainder, its quote budget, at the quote
    asset's decimals). An amount off the grid (stored under an older grid) or of a pair
    without a grid stays as stored."""
    if spec is None:
        return order
    budget = order["order_type"] == "market" and order["side"] == "buy"
    amount = ((spec.to_quote_units, spec.quote_amount) if budget
              else (spec.to_lots, spec.quantity))
    rules = {"price": (spec.to_ticks, spec.price), "quantity": amount,
             "remaining_quantity": amount, "filled_quantity": (spec.to_lots, spec.quantity)}
    out = dict(order)
    for key, (to_grid, from_grid) in rules.items():
        text = out.get(key)
        steps = None if text is None else to_grid(Decimal(text))
        if steps is not None:
            out[key] = plain(from_grid(steps))
    return out


@operation("place_order", "Orders", "Place a limit or market order", access="user",
           body=PLACE, rate_limited=True,
           responses={200: PLACED, 403: "Error", 409: "Error", 503: "Error", 504: "Error"},
           links=_order_links("$response.body#/order_id"))
async def place_order(request: Request) -> Response:
    principal = require_active(request)
    body = await PLACE.read(request)
    services: Services = request.state.services
    services.limiter.check(request, "orders", principal.user_id)
    kind, side = OrderType(body["order_type"]), Side(body["side"])
    price, quantity = body["price"], body["quantity"]
    if "/" not in body["symbol"]:
        raise bad_request("Symbol should contain '/' e.g 'BTC/USDT'")
    _check_amounts(kind, price, quantity)
    symbol = slash_symbol(body["symbol"])
    pair = services.catalog.active_pair(symbol)
    if pair is None:
        raise unprocessable("Invalid or unsupported trading pair")
    market_buy = kind is OrderType.MARKET and side is Side.BUY
    if price is not None:
        check_places(services.catalog, "price", price, pair.quote)
    check_places(services.catalog, "quantity", quantity, pair.quote if market_buy else pair.base)
    tif = TimeInForce(body["time_in_force"] or "GTC")
    if kind is OrderType.MARKET and (body["post_only"] or body["time_in_force"]):
        raise bad_request("time_in_force and post_only apply to limit orders only")
    outcome = await services.exchange.place_order(
        principal.user_id, symbol, side, kind, price=price,
        quantity=None if market_buy else quantity, budget=quantity if market_buy else None,
        time_in_force=tif, post_only=bool(body["post_only"]),
        client_order_id=body["client_order_id"])
    if isinstance(outcome, Rejected):
        services.metrics.orders.labels("rejected").inc()
        raise rejection(outcome.code, _rejection_message(services, pair, side, outcome.code))
    services.counters.orders_processed += 1
    services.metrics.orders.labels("placed").inc()
    # every trade has one taker, whose placement answer lists it (a repeat of a keyed
    # placement answers its stored result again: counted again, as a placement is)
    services.metrics.trades.inc(len(outcome.get("trades", ())))
    return json(outcome)


def _rejection_message(services: Services, pair: PairInfo, side: Side,
                       code: RejectCode) -> str | None:
    """The messages that name the asset or the pair's grid (else the code's default)."""
    if code is RejectCode.INSUFFICIENT_FUNDS:
        return f"Insufficient available {pair.quote if side is Side.BUY else pair.base} balance"
    spec = services.exchange.pair_spec(pair.symbol)
    if spec is None:
        return None
    if code is RejectCode.PRICE_OFF_TICK:
        return f"price must be a multiple of {plain(spec.price_step)} on {pair.symbol}"
    if code is RejectCode.QUANTITY_OFF_LOT:
        return f"quantity must be a multiple of {plain(spec.quantity_step)} on {pair.symbol}"
    return None


def _check_amounts(kind: OrderType, price: Decimal | None, quantity: Decimal) -> None:
    """The original's checks, in its order and with its messages."""
    if kind is OrderType.LIMIT:
        if price is None:
            raise bad_request("A limit order should have a price")
        if price <= 0:
            raise bad_request("Price is or less than zero")
    elif price is not None:
        raise bad_request("A market order does not need a price")
    if quantity <= 0:
        raise bad_request("Quantity is or less than zero")


@operation("get_orders", "Orders", "List your orders, paginated", access="user",
           params=[STATUS_PARAM, PAIR_PARAM, f.PAGE, f.LIMIT, f.ORDER],
           responses={200: ORDER_PAGE, 422: "Error"},
           links=_order_links("$response.body#/data/0/id"))
async def get_orders(request: Request) -> Response:
    principal = require_user(request)
    services: Services = request.state.services
    statuses = STATUS_PARAM.get(request)
    pair_id = pair_filter(services.catalog, PAIR_PARAM.get(request))
    page, limit = f.PAGE.get(request), f.LIMIT.get(request)
    rows, total = await list_orders(
        services.db, uuid.UUID(principal.user_id), statuses=statuses, pair_id=pair_id,
        page=page, limit=limit, descending=f.ORDER.get(request) == "desc")
    spec = services.exchange.pair_spec
    return json({"data": [order_json(r, spec(r["symbol"])) for r in rows], "page": page,
                 "limit": limit, "total": total})



async def _own_order(request: Request, user_id: str) -> Row:
    row = await order_by_id(request.state.services.db, ORDER_ID.get(request))
    if row is None or str(row["user_id"]) != user_id:  # no existence leak (API.md)
        raise not_found("Order not found")
    return row


@operation("get_order_by_id", "Orders", "One of your orders", access="user",
           params=[ORDER_ID], responses={200: ORDER, 404: "Error"})
async def get_order(request: Request) -> Response:
    principal = require_user(request)
    row = await _own_order(request, principal.user_id)
    return json(order_json(row, request.state.services.exchange.pair_spec(row["symbol"])))


@operation("cancel_order", "Orders", "Cancel one of your open orders", access="user",
           params=[ORDER_ID], responses={200: ORDER, 403: "Error", 404: "Error",
                                         503: "Error", 504: "Error"})
async def cancel_order(request: Request) -> Response:
    principal = require_active(request)
    services: Services = request.state.services
    order_id = ORDER_ID.get(request)
    outcome = await services.exchange.cancel_order(principal.user_id, str(order_id))
    if isinstance(outcome, Rejected):
        if outcome.code in (RejectCode.ORDER_NOT_FOUND, RejectCode.ORDER_NOT_OPEN):
            # The core has no such open order of this user: say why, from what is stored.
            row = await _own_order(request, principal.user_id)  # 404 if not theirs
            if row["status"] == "filled":
                raise bad_request("Filled orders can not be cancelled")
            if row["status"] == "cancelled":
                raise bad_request("Order is already cancelled")
            raise rejection(RejectCode.ORDER_NOT_OPEN)  # finished, not yet stored
        raise rejection(outcome.code)
    # The cancelled order, in ``order_json``'s shape (writes.py), at the same scale.
    return json(at_pair_scale(outcome, services.exchange.pair_spec(outcome["symbol"])))


routes = [
    Route(f"{API}/orders", place_order, methods=["POST"]),
    Route(f"{API}/orders", get_orders, methods=["GET"]),
    Route(f"{API}/orders/{{order_id}}", get_order, methods=["GET"]),
    Route(f"{API}/orders/{{order_id}}", cancel_order, methods=["DELETE"]),
]
