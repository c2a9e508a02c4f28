"""Pair symbols as the original spells them: ``BTC/USDT`` in bodies and WS channels,
``BTC-USDT`` in URL paths and the ``pair`` filter; both normalised (trimmed, uppercased)
and reported in slash form. The error messages are the original's."""

from __future__ import annotations

from excentra.http.errors import ApiError, bad_request

MAX_SYMBOL = 21


def _parse(text: str, sep: str) -> tuple[str, str]:
    example = f"BTC{sep}USDT"
    if not text.strip():
        raise bad_request("Symbol can not be empty")
    parts = text.split(sep)
    if len(parts) != 2 or len(text) > MAX_SYMBOL * 2:
        raise bad_request(f"Invalid asset symbol, expected e.g `{example}`")
    base, quote = (p.strip().upper() for p in parts)
    if not (_asset_like(base) and _asset_like(quote)):
        raise bad_request(f"Invalid asset symbol, expected e.g `{example}`")
    return base, quote


def _asset_like(code: str) -> bool:
    return 0 < len(code) <= 10 and code.isascii() and code.isalnum()


def slash_symbol(text: str) -> str:
    """``" btc / usdt "`` → ``"BTC/USDT"``."""
    base, quote = _parse(text, "/")
    return f"{base}/{quote}"


def path_symbol(text: str) -> str:
    """A path/filter symbol ``BTC-USDT`` → ``"BTC/USDT"``. ``BTC/USDT`` is accepted too
    (API.md: ``GET /ticker/BTC/USDT``)."""
    if "/" in text and "-" not in text:
        return slash_symbol(text)
    base, quote = _parse(text, "-")
    return f"{base}/{quote}"


def asset_code(text: str) -> str:
    """An asset symbol from a path or body: trimmed, uppercased, at most 10 characters."""
    code = text.strip().upper()
    if not _asset_like(code):
        raise ApiError(422, f"{code[:20]} is not supported")
    return code
