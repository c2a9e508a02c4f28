"""The server's settings: one frozen value built from the environment (or by tests)."""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from excentra.chain.settings import ChainSettings
from excentra.db.url import dialect_of, resolve_url
from excentra.http.ratelimit import DEFAULT_POLICIES, Policy
from excentra.secretfile import create_private, read_private

log = logging.getLogger("excentra.config")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_FRONTEND = "http://localhost:3001"
ACCESS_TOKEN_TTL = 15 * 60
"""Seconds an access token lives (the original's 15 minutes)."""
REFRESH_TOKEN_TTL = 7 * 24 * 3600
RESET_TOKEN_TTL = 15 * 60
DEFAULT_DEPOSIT_LIMITS = {"USDT": Decimal(1000), "BTC": Decimal("0.05"), "ETH": Decimal("0.5"),
                          "SOL": Decimal(5)}
"""The original's per-request caps on ``POST /balances/deposit`` (its frontend repeats
them)."""
_ASSET = re.compile(r"[A-Z0-9]{1,10}")
_AMOUNT = re.compile(r"[0-9]+(\.[0-9]+)?")


@dataclass(frozen=True)
class Settings:
    database_url: str = ""
    """Empty: the embedded SQLite file (see ``excentra.db.url``)."""
    jwt_secret: str = ""
    """Empty: read or create the secret file beside the database (``resolve_secret``)."""
    frontend_urls: tuple[str, ...] = (DEFAULT_FRONTEND,)
    """CORS origins; the first is also the base of password-reset links."""
    trusted_proxies: tuple[Network, ...] = ()
    smtp_url: str = ""
    """``smtp://[user:pass@]host[:port]``; empty: reset links are logged, not mailed."""
    mail_from: str = "noreply@excentra.exchange"
    cookie_secure: bool = False
    cookie_samesite: str | None = None
    rate_limits: Mapping[str, Policy] = field(default_factory=lambda: dict(DEFAULT_POLICIES))
    seed_book: bool = True
    coingecko_url: str = "https://api.coingecko.com/api/v3"
    price_timeout: float = 3.0
    ticker_interval: float = 5.0
    refresh_grace_seconds: float = 5.0
    """``REFRESH_GRACE_SECONDS``: how long a just-rotated refresh token is still answered
    with its successor (two tabs, or React's development mode, refreshing at once), rather
    than treated as stolen; 0 turns the grace off (``excentra.http.sessions``)."""
    max_pending_commands: int = 4000
    """``MAX_PENDING_COMMANDS``: commands that may wait for the core at once; past it new
    ones are answered 503 at once (load shedding; ``excentra.exchange``)."""
    read_wait: float = 5.0
    """``READ_WAIT``: seconds a read of the tables may wait for the projection to show the
    reader's last write before it is answered 503 (``excentra.actors.watermarks``)."""
    projector: str = "process"
    """``PROJECTOR``: ``process`` (default: the tables are written by a child process, off
    the core's interpreter lock) or ``thread`` (in the server's process)."""
    projector_paused: bool = False
    """``EXCENTRA_PROJECTOR_PAUSED=1``: start with the projector paused — commands are
    acknowledged from the event log, the tables do not move. For the tests that kill the
    server between log and projection; never in production (reads of users who wrote
    answer 503 after ``READ_WAIT``)."""
    deposit_limits: Mapping[str, Decimal] = field(
        default_factory=lambda: dict(DEFAULT_DEPOSIT_LIMITS))
    """``DEPOSIT_LIMITS``: the most one simulated deposit (``POST /balances/deposit``) may
    credit, per asset; an asset not listed has no cap (``parse_deposit_limits``)."""
    ws_max_connections_per_ip: int = 64
    """``WS_MAX_CONNECTIONS_PER_IP``: WebSocket connections one client address may hold at
    once (behind a trusted proxy, the forwarded address); one more is closed with 1008."""
    chain: ChainSettings = field(default_factory=ChainSettings)
    """The ``ETH_*`` variables; the default has no ``rpc_url``: no chain, deposits and
    withdrawals are the simulated ``/balances`` ones only."""
    wallet_mnemonic: str = field(default="", repr=False)
    """``WALLET_MNEMONIC``; empty: read or create the file beside the database
    (``excentra.chain.wallet.resolve_mnemonic``). Kept out of the repr: it is the funds."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object
                 ) -> Settings:
        env = os.environ if environ is None else environ
        fronts = tuple(u.strip().rstrip("/") for u in
                       env.get("FRONTEND_URL", DEFAULT_FRONTEND).split(",") if u.strip())
        samesite = env.get("COOKIE_SAMESITE", "").strip().lower() or None
        if samesite not in (None, "lax", "strict", "none"):
            raise ValueError(f"COOKIE_SAMESITE must be lax, strict or none, not {samesite!r}")
        values: dict[str, object] = {
            "database_url": env.get("DATABASE_URL", ""),
            "jwt_secret": env.get("JWT_SECRET", ""),
            "frontend_urls": fronts or (DEFAULT_FRONTEND,),
            "trusted_proxies": parse_networks(env.get("TRUSTED_PROXIES", "")),
            "smtp_url": env.get("SMTP_URL", ""),
            "mail_from": env.get("MAIL_FROM", "noreply@excentra.exchange"),
            "cookie_secure": env.get("COOKIE_SECURE", "").lower() in ("1", "true", "yes"),
            "cookie_samesite": samesite,
            "seed_book": env.get("SEED_BOOK", "1").lower() not in ("0", "false", "no"),
            "rate_limits": parse_rate_limits(env.get("RATE_LIMITS", "")),
            "deposit_limits": parse_deposit_limits(env.get("DEPOSIT_LIMITS")),
            "chain": ChainSettings.from_env(env),
            "wallet_mnemonic": env.get("WALLET_MNEMONIC", ""),
        }
        grace = env.get("REFRESH_GRACE_SECONDS", "").strip()
        if grace:
            try:
                values["refresh_grace_seconds"] = float(grace)
            except ValueError:
                raise ValueError(f"REFRESH_GRACE_SECONDS must be a number of seconds, not "
                                 f"{grace!r}") from None
            if not 0 <= values["refresh_grace_seconds"] <= 60:  # type: ignore[operator]
                raise ValueError("REFRESH_GRACE_SECONDS must be between 0 and 60")
        wait = env.get("READ_WAIT", "").strip()
        if wait:
            try:
                values["read_wait"] = float(wait)
            except ValueError:
                raise ValueError(f"READ_WAIT must be a number of seconds, not {wait!r}"
                                 ) from None
            if not 0 < values["read_wait"] <= 60:  # type: ignore[operator]
                raise ValueError("READ_WAIT must be more than 0 and at most 60 seconds")
        projector = env.get("PROJECTOR", "").strip().lower()
        if projector:
            if projector not in ("process", "thread"):
                raise ValueError(f"PROJECTOR must be process or thread, not {projector!r}")
            values["projector"] = projector
        values["projector_paused"] = env.get("EXCENTRA_PROJECTOR_PAUSED", "").lower() in (
            "1", "true", "yes")
        for var, name in (("WS_MAX_CONNECTIONS_PER_IP", "ws_max_connections_per_ip"),
                          ("MAX_PENDING_COMMANDS", "max_pending_commands")):
            cap = env.get(var, "").strip()
            if not cap:
                continue
            if not cap.isascii() or not cap.isdigit() or int(cap) < 1:
                raise ValueError(f"{var} must be a positive integer, not {cap!r}")
            values[name] = int(cap)
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    @property
    def frontend_url(self) -> str:
        return self.frontend_urls[0]


def parse_networks(text: str) -> tuple[Network, ...]:
    """``"127.0.0.1, 10.0.0.0/8"`` → networks (a bare address is a /32 or /128)."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False)
                 for part in text.split(",") if part.strip())


def parse_rate_limits(text: str) -> dict[str, Policy]:
    """``RATE_LIMITS``: the defaults, changed by ``name=LIMIT/SECONDS`` items
    (``"orders=600/60, login=20/900"``), or ``off`` for none at all (benchmarks)."""
    policies = dict(DEFAULT_POLICIES)
    if text.strip().lower() == "off":
        return {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, spec = item.partition("=")
        limit, _, window = spec.partition("/")
        if name.strip() not in DEFAULT_POLICIES or not limit.isdigit() or not window.isdigit():
            raise ValueError(f"RATE_LIMITS item {item!r}: expected NAME=LIMIT/SECONDS with "
                             f"NAME one of {', '.join(DEFAULT_POLICIES)}")
        policies[name.strip()] = Policy(int(limit), int(window))
    return policies


def parse_deposit_limits(text: str | None) -> dict[str, Decimal]:
    """``DEPOSIT_LIMITS``: unset or blank, the original's caps (``DEFAULT_DEPOSIT_LIMITS``);
    ``none``, no cap at all; else ``ASSET=AMOUNT`` items (``"USDT=1000, BTC=0.05"``) that
    replace the defaults whole: an asset not listed has no cap. Strict: an asset is 1 to
    10 upper-case letters or digits, listed once; an amount is a plain positive decimal."""
    if text is None or not text.strip():
        return dict(DEFAULT_DEPOSIT_LIMITS)
    if text.strip().lower() == "none":
        return {}
    limits: dict[str, Decimal] = {}
    for item in (part.strip() for part in text.split(",")):
        asset, sep, amount = (p.strip() for p in item.partition("="))
        if not (sep and _ASSET.fullmatch(asset) and _AMOUNT.fullmatch(amount)
                and Decimal(amount) > 0):
            raise ValueError(f"DEPOSIT_LIMITS item {item!r}: expected ASSET=AMOUNT (e.g. "
                             f"USDT=1000) with an upper-case asset code and a positive "
                             f"decimal amount, or 'none' for no caps")
        if asset in limits:
            raise ValueError(f"DEPOSIT_LIMITS names {asset} twice")
        limits[asset] = Decimal(amount)
    return limits


def resolve_secret(settings: Settings) -> str:
    """The JWT secret: configured, else a random one kept beside the database.

    Never a known default. For SQLite the file sits next to the database file; for
    PostgreSQL in the working directory (``excentra-jwt.secret``).
    """
    if settings.jwt_secret:
        return settings.jwt_secret
    url = resolve_url(settings.database_url or None)
    if dialect_of(url) == "sqlite" and ":memory:" not in url:
        db_file = Path(url.split("///", 1)[1])
        path = db_file.with_name(db_file.name + ".jwt-secret")
    else:
        path = Path("excentra-jwt.secret")
    secret = secrets.token_hex(32)
    try:
        create_private(path, secret)  # owner-only from the first byte
    except FileExistsError:  # kept from an earlier start, or made by a sibling just now
        return read_private(path)
    log.warning("JWT_SECRET not set: generated a random secret",
                extra={"path": str(path.resolve())})
    return secret
