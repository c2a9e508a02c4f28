"""Pair symbols as the original spells them: ``BTC/USDT`` in bodies and WS channels,
``BTC-USDT`` in URL paths and the ``pair`` filter; both normalised (trimmed, uppercased)
and reported in slash form. The error messages are the original's.

Trimming removes ASCII spaces only, so the patterns below (the schema's) say exactly what
is accepted; whether the asset or pair exists is for the route to say."""

from __future__ import annotations

from excentra.http.errors import ApiError, bad_request

MAX_SYMBOL = 21
_CODE = "[A-Za-z0-9]{1,10}"
ASSET_PATTERN = f"^ *{_CODE} *$"
"""An asset code as bodies and paths may give it (spaces around are trimmed)."""
SLASH_PATTERN = f"^ *{_CODE} */ *{_CODE} *$"
"""A pair in slash form (bodies), at most ``MAX_SYMBOL * 2`` characters in all."""
HYPHEN_PATTERN = f"^ *{_CODE} *- *{_CODE} *$"
"""A pair in hyphen form (paths), at most ``MAX_SYMBOL * 2`` characters in all."""
FILTER_PATTERN = f"^ *{_CODE} *[-/] *{_CODE} *$"
"""What :func:`path_symbol` takes: hyphen or slash form."""


def _parse(text: str, sep: str) -> tuple[str, str]:
    example = f"BTC{sep}USDT"
    if not text.strip(" "):
        raise bad_request("Symbol can not be empty")
    parts = text.split(sep)
    if len(parts) != 2 or len(text) > MAX_SYMBOL * 2:
        raise bad_request(f"Invalid asset symbol, expected e.g `{example}`")
    base, quote = (p.strip(" ") for p in parts)
    if not (asset_like(base) and asset_like(quote)):  # before upper(): "ß".upper() is "SS"
        raise bad_request(f"Invalid asset symbol, expected e.g `{example}`")
    return base.upper(), quote.upper()


def asset_like(code: str) -> bool:
    """``ASSET_PATTERN`` once trimmed: 1 to 10 ASCII letters or digits."""
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
    code = text.strip(" ")
    if not asset_like(code):  # before upper(): "ß".upper() is "SS"
        raise ApiError(422, f"{code.upper()[:20]} is not supported")
    return code.upper()
