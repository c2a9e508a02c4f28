"""Every error the HTTP layer sends: the ``{"error": message}`` envelope, one mapping from
``RejectCode`` to status and message, and the handlers that wrap Starlette's own errors.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route

from excentra.engine import RejectCode

log = logging.getLogger("excentra.http")


class ApiError(Exception):
    """Raised by handlers and helpers; becomes ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def unauthorized(message: str, headers: Mapping[str, str] | None = None) -> ApiError:
    return ApiError(401, message, headers)


def forbidden(message: str) -> ApiError:
    return ApiError(403, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def conflict(message: str) -> ApiError:
    return ApiError(409, message)


def unprocessable(message: str) -> ApiError:
    return ApiError(422, message)


def error_response(status: int, message: str,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


REJECTIONS: dict[RejectCode, tuple[int, str]] = {
    RejectCode.PRICE_NOT_POSITIVE: (400, "Price is or less than zero"),
    RejectCode.QUANTITY_NOT_POSITIVE: (400, "Quantity is or less than zero"),
    # Off the asset's or pair's precision: 422, a well-formed amount that what exists
    # (decimals, grid: data, not a schema) cannot take, as ``validate.check_places``.
    RejectCode.PRICE_OFF_TICK: (422, "Price is not a multiple of the pair's price step"),
    RejectCode.QUANTITY_OFF_LOT: (422, "Quantity is not a multiple of the pair's "
                                       "quantity step"),
    RejectCode.BUDGET_OFF_GRID: (422, "Amount has more decimal places than the quote asset"),
    RejectCode.AMOUNT_TOO_LARGE: (400, "Amount is too large"),
    RejectCode.INVALID_NUMBER: (400, "Invalid number"),
    RejectCode.DUPLICATE_ORDER_ID: (409, "Resource already exists"),
    RejectCode.POST_ONLY_WOULD_TAKE: (400, "Post-only order would take liquidity"),
    RejectCode.ORDER_NOT_FOUND: (404, "Order not found"),
    RejectCode.INSUFFICIENT_FUNDS: (422, "Insufficient balance"),
    RejectCode.AMOUNT_OFF_GRID: (422, "Amount has more decimal places than the asset allows"),
    RejectCode.AMOUNT_NOT_POSITIVE: (400, "Amount must be greater than zero"),
    RejectCode.PAIR_NOT_FOUND: (422, "Invalid or unsupported trading pair"),
    RejectCode.ASSET_NOT_FOUND: (400, "Asset is not supported"),
    RejectCode.SELF_CROSS: (400, "Order would match against your own resting order"),
    RejectCode.ORDER_NOT_OPEN: (400, "Order is no longer open"),
    RejectCode.ALREADY_EXISTS: (409, "Resource already exists"),
    RejectCode.UNAVAILABLE: (503, "Service temporarily unavailable, please retry"),
    RejectCode.ACCOUNT_SUSPENDED: (403, "Account suspended"),
    RejectCode.UNSTORABLE: (422, "The request could not be stored: it refers to something "
                                 "that no longer exists or holds data the database refuses"),
    RejectCode.OUTCOME_UNKNOWN: (504, "The request may still complete: retry with the same "
                                      "client_order_id or Idempotency-Key to learn its "
                                      "outcome"),
    RejectCode.BELOW_MINIMUM: (400, "Amount is below the asset's minimum withdrawal"),
    RejectCode.INVALID_ADDRESS: (400, "Invalid destination address"),
    RejectCode.WITHDRAWAL_NOT_FOUND: (404, "Withdrawal not found"),
    RejectCode.WITHDRAWAL_WRONG_STATE: (409, "The withdrawal's status does not allow this"),
}
"""The one place a rejection becomes HTTP. Routes override the message where the original
names the asset or the order's state (see ``routes/orders.py``)."""


def rejection(code: RejectCode, message: str | None = None) -> ApiError:
    status, default = REJECTIONS[code]
    headers = {"Retry-After": "1"} if status in (503, 504) else None
    return ApiError(status, message or default, headers)


# -- exception handlers (installed by the app) ----------------------------------------------


async def api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.headers)


async def http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own rejections (unknown route, wrong method) in our envelope."""
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    headers = exc.headers
    if exc.status_code == 405:  # Starlette names only the first route of the path
        headers = {**(headers or {}), "Allow": ", ".join(_allowed(request))}
    return error_response(exc.status_code, str(exc.detail), headers)


def _allowed(request: Request) -> list[str]:
    """Every method the request's path is served with: by its static routes if it has
    any (``/balances/deposit``: POST, not also the GET of ``/balances/{asset}``), else by
    the templated ones that match it."""
    matching = [route for route in getattr(request.app, "routes", ())
                if isinstance(route, Route) and route.matches(request.scope)[0] is not Match.NONE]
    static = [route for route in matching if not route.param_convertors]
    return sorted({m for route in static or matching for m in route.methods or ()})


async def dependency_unavailable(request: Request, exc: Exception) -> Response:
    """The database is unreachable: 503 with ``Retry-After``, nothing done. Handled here
    (not as a 500, which Starlette re-raises after answering, and uvicorn then closes the
    keep-alive connection without saying so), so the client's connection survives."""
    log.warning("database unavailable", extra={"path": request.url.path,
                                               "method": request.method,
                                               "error": str(exc)[:300]})
    return error_response(503, "Service temporarily unavailable, please retry",
                          {"Retry-After": "1"})


async def server_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc,
              extra={"path": request.url.path, "method": request.method})
    return error_response(500, "Internal server error")
