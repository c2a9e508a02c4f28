"""The Ethereum settings: one frozen value built from the ``ETH_*`` environment variables.

Amounts are ``Decimal`` in the asset's whole units (``ETH:0.001``, never wei), like every
other amount in the exchange.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType

from excentra.chain.wallet import parse_address

ETH = "ETH"
MAX_SYMBOL = 10
MAX_TOKEN_DECIMALS = 255
"""ERC-20 declares ``decimals`` as a uint8."""
ETH_DECIMALS = 18
"""Wei per ether: 10^18."""
ETH_TRANSFER_GAS = 21_000
"""What a plain ETH transfer costs in gas: no token transfer can take less."""
MIN_GAS_LIMIT = ETH_TRANSFER_GAS

_SYMBOL = re.compile(rf"[A-Z0-9]{{1,{MAX_SYMBOL}}}")
_RPC_SCHEMES = ("http://", "https://", "ws://", "wss://")

DEFAULT_MIN_DEPOSIT = {ETH: Decimal("0.0001")}
"""Smaller deposits are dust (not worth crediting); a token has no minimum unless set."""
DEFAULT_WITHDRAWAL_FEE = {ETH: Decimal("0.0005")}
DEFAULT_WITHDRAWAL_MIN = {ETH: Decimal("0.001")}
TOKEN_WITHDRAWAL_FEE = Decimal(1)
TOKEN_WITHDRAWAL_MIN = Decimal(5)


@dataclass(frozen=True)
class Token:
    """An ERC-20 token the exchange accepts: its ledger symbol and its contract."""

    symbol: str
    contract: str
    """Normalised to the EIP-55 checksummed form (so comparisons are exact)."""
    decimals: int
    """The contract's ``decimals()``: the chain's unit, which the ledger may round to."""

    def __post_init__(self) -> None:
        if not _SYMBOL.fullmatch(self.symbol):
            raise ValueError(f"symbol {self.symbol!r} is not 1 to {MAX_SYMBOL} uppercase "
                             "letters or digits")
        if self.symbol == ETH:
            raise ValueError("ETH is the chain's own coin, not a token")
        try:
            contract = parse_address(self.contract)
        except ValueError as exc:
            raise ValueError(f"contract is not an address ({exc})") from None
        object.__setattr__(self, "contract", contract)
        if not 0 <= self.decimals <= MAX_TOKEN_DECIMALS:
            raise ValueError(f"decimals must be 0 to {MAX_TOKEN_DECIMALS}, got "
                             f"{self.decimals}")


def _amounts() -> Mapping[str, Decimal]:
    return MappingProxyType({})


@dataclass(frozen=True)
class ChainSettings:
    """Where the chain is, how sure a deposit must be, and what withdrawals cost.

    Built with keyword arguments (tests) or :meth:`from_env`. The amount maps are completed
    on construction: ``min_deposit``, ``withdrawal_fee`` and ``withdrawal_min`` hold every
    asset (the defaults fill the gaps); ``approval_above`` holds only the assets given.
    """

    name: str = "ethereum"
    """The chain's key in the database (``deposit_addresses.chain``): never rename it on a
    live database, its addresses would be orphaned."""
    rpc_url: str = field(default="", repr=False)
    """``ETH_RPC_URL``; empty: no chain (the watcher is off). Left out of the repr and of
    error messages: provider URLs often embed an API key."""
    confirmations: int = 12
    """``ETH_CONFIRMATIONS``: blocks on top of a deposit's before it is credited (reorgs)."""
    poll_interval: float = 2.0
    """``ETH_POLL_INTERVAL`` seconds between looks at the chain head."""
    tokens: tuple[Token, ...] = ()
    """``ETH_TOKENS="USDT:0xContract:6,DAI:0x...:18"``."""
    min_deposit: Mapping[str, Decimal] = field(default_factory=_amounts)
    """``ETH_MIN_DEPOSIT="ETH:0.001,USDT:1"``: deposits below are dust and ignored.
    Defaults: ETH 0.0001, a token 0."""
    withdrawal_fee: Mapping[str, Decimal] = field(default_factory=_amounts)
    """``ETH_WITHDRAWAL_FEE="ETH:0.0005,USDT:2"``. Defaults: ETH 0.0005, a token 1."""
    withdrawal_min: Mapping[str, Decimal] = field(default_factory=_amounts)
    """``ETH_WITHDRAWAL_MIN``. Defaults: ETH 0.001, a token 5."""
    approval_above: Mapping[str, Decimal] = field(default_factory=_amounts)
    """``ETH_APPROVAL_ABOVE="ETH:10,USDT:10000"``: larger withdrawals wait for an admin.
    An asset not listed never needs one."""
    start_block: int | None = None
    """``ETH_START_BLOCK``: where a fresh database starts scanning; None: the chain head at
    the first start (deposits made before it are not seen)."""
    max_blocks_per_poll: int = 500
    """``ETH_MAX_BLOCKS_PER_POLL``: catching up after downtime goes in bounded steps."""
    gas_limit_token: int = 100_000
    """``ETH_GAS_LIMIT_TOKEN``: gas for one ERC-20 transfer."""
    sweep_interval: float = 30.0
    """``ETH_SWEEP_INTERVAL``: seconds between sweeping rounds (sweeping is never urgent,
    and each round asks the node for every address's balances); none while catching up."""
    replace_after: float = 600.0
    """``ETH_REPLACE_AFTER`` seconds a sent withdrawal may stay unmined before it is
    replaced (same nonce, fees × 1.25)."""

    def __post_init__(self) -> None:
        if self.rpc_url and not self.rpc_url.startswith(_RPC_SCHEMES):
            raise ValueError("rpc_url must start with http://, https://, ws:// or wss://")
        if self.confirmations < 0:
            raise ValueError(f"confirmations must be 0 or more, got {self.confirmations}")
        if not (math.isfinite(self.poll_interval) and self.poll_interval > 0):
            raise ValueError(f"poll_interval must be a positive number of seconds, got "
                             f"{self.poll_interval}")
        if not (math.isfinite(self.sweep_interval) and self.sweep_interval >= 0):
            raise ValueError(f"sweep_interval must be 0 or more seconds, got "
                             f"{self.sweep_interval}")
        if not (math.isfinite(self.replace_after) and self.replace_after >= 0):
            raise ValueError(f"replace_after must be 0 or more seconds, got "
                             f"{self.replace_after}")
        if self.start_block is not None and self.start_block < 0:
            raise ValueError(f"start_block must be 0 or more, got {self.start_block}")
        if self.max_blocks_per_poll < 1:
            raise ValueError(f"max_blocks_per_poll must be 1 or more, got "
                             f"{self.max_blocks_per_poll}")
        if self.gas_limit_token < MIN_GAS_LIMIT:
            raise ValueError(f"gas_limit_token must be at least {MIN_GAS_LIMIT}, got "
                             f"{self.gas_limit_token}")
        _check_tokens(self.tokens)
        symbols = [t.symbol for t in self.tokens]
        defaults = {
            "min_deposit": (DEFAULT_MIN_DEPOSIT, Decimal(0)),
            "withdrawal_fee": (DEFAULT_WITHDRAWAL_FEE, TOKEN_WITHDRAWAL_FEE),
            "withdrawal_min": (DEFAULT_WITHDRAWAL_MIN, TOKEN_WITHDRAWAL_MIN),
        }
        for name in ("min_deposit", "withdrawal_fee", "withdrawal_min", "approval_above"):
            given: Mapping[str, Decimal] = getattr(self, name)
            for symbol, amount in given.items():
                try:
                    _check_amount(symbol, amount, self.assets)
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None
            complete: dict[str, Decimal] = {}
            if name in defaults:
                coin, token = defaults[name]
                complete = {**coin, **dict.fromkeys(symbols, token)}
            complete.update(given)
            object.__setattr__(self, name, MappingProxyType(complete))

    @property
    def assets(self) -> tuple[str, ...]:
        """ETH first, then the tokens in their configured order."""
        return (ETH, *(t.symbol for t in self.tokens))

    def without(self, assets: Collection[str]) -> ChainSettings:
        """These settings without the tokens ``assets`` (and their amounts)."""
        def keep(amounts: Mapping[str, Decimal]) -> dict[str, Decimal]:
            return {k: v for k, v in amounts.items() if k not in assets}

        return dataclasses.replace(
            self, tokens=tuple(t for t in self.tokens if t.symbol not in assets),
            min_deposit=keep(self.min_deposit), withdrawal_fee=keep(self.withdrawal_fee),
            withdrawal_min=keep(self.withdrawal_min),
            approval_above=keep(self.approval_above))

    def chain_decimals(self, asset: str) -> int:
        """The chain's unit of ``asset``: 18 for ETH, the contract's for a token."""
        token = self.token(asset)
        return ETH_DECIMALS if token is None else token.decimals

    def token(self, symbol: str) -> Token | None:
        """The token called ``symbol``; None for ETH or an unknown symbol."""
        return next((t for t in self.tokens if t.symbol == symbol), None)

    @property
    def enabled(self) -> bool:
        return bool(self.rpc_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ChainSettings:
        """Read the ``ETH_*`` variables; unset or blank ones keep their defaults.

        Raises:
            ValueError: naming the variable (and the item of a list) that is wrong.
        """
        env = os.environ if environ is None else environ
        tokens = _parse_tokens(env.get("ETH_TOKENS", ""))
        assets = (ETH, *(t.symbol for t in tokens))
        values: dict[str, object] = {"tokens": tokens}
        for var, name in (("ETH_MIN_DEPOSIT", "min_deposit"),
                          ("ETH_WITHDRAWAL_FEE", "withdrawal_fee"),
                          ("ETH_WITHDRAWAL_MIN", "withdrawal_min"),
                          ("ETH_APPROVAL_ABOVE", "approval_above")):
            values[name] = _parse_amounts(var, env.get(var, ""), assets)
        scalars: tuple[tuple[str, str, Callable[[str], object]], ...] = (
            ("ETH_RPC_URL", "rpc_url", str),
            ("ETH_CONFIRMATIONS", "confirmations", int),
            ("ETH_POLL_INTERVAL", "poll_interval", float),
            ("ETH_START_BLOCK", "start_block", int),
            ("ETH_MAX_BLOCKS_PER_POLL", "max_blocks_per_poll", int),
            ("ETH_GAS_LIMIT_TOKEN", "gas_limit_token", int),
            ("ETH_REPLACE_AFTER", "replace_after", float),
            ("ETH_SWEEP_INTERVAL", "sweep_interval", float),
        )
        for var, name, convert in scalars:
            text = env.get(var, "").strip()
            if not text:
                continue
            try:
                values[name] = convert(text)
            except ValueError:
                kind = "a whole number" if convert is int else "a number"
                raise ValueError(f"{var} must be {kind}, got {text!r}") from None
            try:
                cls(**{name: values[name]})  # type: ignore[arg-type]
            except ValueError as exc:
                raise ValueError(f"{var}: {exc}") from None
        return cls(**values)  # type: ignore[arg-type]


def _parse_tokens(text: str) -> tuple[Token, ...]:
    """``SYMBOL:CONTRACT:DECIMALS`` items, comma-separated."""
    tokens: list[Token] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        parts = [p.strip() for p in item.split(":")]
        if len(parts) != 3:
            raise ValueError(f"ETH_TOKENS item {item!r}: expected SYMBOL:CONTRACT:DECIMALS")
        symbol, contract, decimals = parts
        if not decimals.isdigit():
            raise ValueError(f"ETH_TOKENS item {item!r}: decimals {decimals!r} is not a "
                             "whole number")
        try:
            tokens.append(Token(symbol.upper(), contract, int(decimals)))
            _check_tokens(tokens)
        except ValueError as exc:
            raise ValueError(f"ETH_TOKENS item {item!r}: {exc}") from None
    return tuple(tokens)


def _check_tokens(tokens: tuple[Token, ...] | list[Token]) -> None:
    """One entry per symbol and per contract: a duplicate would credit a deposit twice or
    to the wrong asset."""
    symbols = [t.symbol for t in tokens]
    contracts = [t.contract for t in tokens]
    for values, what in ((symbols, "symbol"), (contracts, "contract")):
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise ValueError(f"{what} {repeated[0]} is listed twice")


def _parse_amounts(var: str, text: str, assets: tuple[str, ...]) -> dict[str, Decimal]:
    """``SYMBOL:DECIMAL`` items, comma-separated, for assets of this chain."""
    amounts: dict[str, Decimal] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        symbol, sep, number = (p.strip() for p in item.partition(":"))
        symbol = symbol.upper()
        try:
            if not sep or not symbol or not number:
                raise ValueError("expected SYMBOL:AMOUNT")
            if symbol in amounts:
                raise ValueError(f"{symbol} is listed twice")
            amounts[symbol] = _amount(number)
            _check_amount(symbol, amounts[symbol], assets)
        except ValueError as exc:
            raise ValueError(f"{var} item {item!r}: {exc}") from None
    return amounts


def _amount(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a decimal number") from None


def _check_amount(symbol: str, amount: Decimal, assets: tuple[str, ...]) -> None:
    if symbol not in assets:
        raise ValueError(f"unknown asset {symbol!r} (not ETH or a configured token)")
    # isinstance: a float from a caller would carry binary rounding into money.
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount < 0:
        raise ValueError(f"{symbol} amount must be a finite decimal, 0 or more, got "
                         f"{amount}")
