"""Reference prices from outside (CoinGecko) and the startup order-book seeding."""

from excentra.pricing.coingecko import PriceError, fetch_usd_prices
from excentra.pricing.seed import FALLBACK_PRICES, LADDERS, seed_books

__all__ = ["FALLBACK_PRICES", "LADDERS", "PriceError", "fetch_usd_prices", "seed_books"]
