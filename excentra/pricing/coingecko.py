"""USD prices from CoinGecko's ``/simple/price`` (reference §8), exactly: the JSON numbers
are read as ``Decimal`` from their text, never through ``float``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import httpx

USER_AGENT = "Excentra-Exchange/1.0"
MAX_PRICE = Decimal(10) ** 15
"""A price above this (the API's amount limit) is not believed."""


class PriceError(Exception):
    """No usable answer from the price source (network, status, or body)."""


async def fetch_usd_prices(base_url: str, ids: Iterable[str], *, timeout: float,
                           transport: httpx.AsyncBaseTransport | None = None
                           ) -> dict[str, Decimal]:
    """``{coingecko_id: usd_price}`` for ``ids`` in one request.

    Ids missing from the answer, or with a price that is not a positive finite number,
    are left out; the caller decides what to do without them.

    Raises:
        PriceError: the request failed or the body is not the expected JSON object.
    """
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    url = base_url.rstrip("/") + "/simple/price"
    params = {"ids": ",".join(wanted), "vs_currencies": "usd"}
    try:
        async with httpx.AsyncClient(timeout=timeout, transport=transport,
                                     headers={"User-Agent": USER_AGENT}) as client:
            response = await client.get(url, params=params)
            response.raise_for_status()
    except httpx.HTTPError as exc:
        raise PriceError(f"{type(exc).__name__}: {exc}") from exc
    return _prices(response.text, wanted)


def _prices(text: str, wanted: list[str]) -> dict[str, Decimal]:
    try:
        body = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except ValueError as exc:
        raise PriceError(f"not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise PriceError("expected a JSON object")
    prices: dict[str, Decimal] = {}
    for coin in wanted:
        price = _usd(body.get(coin))
        if price is not None:
            prices[coin] = price
    return prices


def _usd(entry: Any) -> Decimal | None:
    if not isinstance(entry, dict):
        return None
    price = entry.get("usd")
    # json.loads gives Decimal for every number (NaN/Infinity literals too): check it
    if isinstance(price, Decimal) and price.is_finite() and 0 < price <= MAX_PRICE:
        return price
    return None
