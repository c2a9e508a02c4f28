"""The exchange's HD wallet: one BIP-39 mnemonic, every address derived from it.

One secret to back up instead of a key per user: the hot wallet and every user's deposit
address come from the same mnemonic along ``m/44'/60'/0'/0/{index}`` (the path MetaMask,
Ledger and Hardhat use, so the funds can be recovered with ordinary wallet software).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from eth_account import Account
from eth_account.hdaccount import key_from_seed
from eth_account.hdaccount.mnemonic import VALID_WORD_COUNTS, Mnemonic
from eth_account.signers.local import LocalAccount
from eth_account.types import Language
from eth_utils.address import is_checksum_address, to_checksum_address

from excentra.db.url import dialect_of, resolve_url
from excentra.secretfile import create_private, read_private

log = logging.getLogger("excentra.chain.wallet")

HOT_WALLET_INDEX = 0
"""The exchange's own account (pays withdrawals and gas). User deposit addresses use
indexes 1 and up, so no user is ever handed the hot wallet's address."""

GENERATED_WORDS = 24
"""256 bits of entropy: the strongest BIP-39 offers, and nothing a person has to type."""

_MAX_INDEX = 2**31 - 1
"""BIP-32: indexes from 2^31 on are the hardened ones, which this path does not use."""


def resolve_mnemonic(configured: str, database_url: str) -> str:
    """The wallet's mnemonic: ``WALLET_MNEMONIC`` if set, else the one kept beside the
    database, else a new one written there.

    Like the JWT secret (``excentra.http.config.resolve_secret``) a fresh install works
    without configuration, but losing this secret loses the deposits, so its creation is
    logged loudly. No message ever contains the words.

    Raises:
        ValueError: the configured or stored phrase is not a valid BIP-39 mnemonic.
    """
    if configured.strip():
        return _checked(configured, "WALLET_MNEMONIC")
    path = mnemonic_path(database_url)
    if path.exists():
        return _read(path)
    phrase = Mnemonic(Language.ENGLISH).generate(GENERATED_WORDS)
    try:
        create_private(path, phrase)
    except FileExistsError:
        # Another process started at the same moment and won: use its mnemonic, never
        # a second one.
        return _read(path)
    log.warning("WALLET_MNEMONIC not set: generated a new wallet mnemonic and stored it in "
                "%s (owner-only). Back this file up: without it the funds at the deposit "
                "addresses and the hot wallet are lost.", path.resolve(),
                extra={"path": str(path.resolve())})
    return phrase


def mnemonic_path(database_url: str) -> Path:
    """Where the generated mnemonic lives: next to a SQLite database file, else (PostgreSQL)
    in the working directory, as ``resolve_secret`` places the JWT secret."""
    url = resolve_url(database_url or None)
    if dialect_of(url) == "sqlite" and ":memory:" not in url:
        db_file = Path(url.split("///", 1)[1])
        return db_file.with_name(db_file.name + ".wallet-mnemonic")
    return Path("excentra-wallet.mnemonic")


def _read(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    if os.name == "posix" and mode & 0o077:
        log.warning("the wallet mnemonic file %s is readable by other users (mode %s): "
                    "chmod 600 it", path, oct(mode), extra={"path": str(path)})
    return _checked(read_private(path), str(path))


def _checked(text: str, source: str) -> str:
    """The phrase with its whitespace and case normalised, if it is a valid BIP-39 mnemonic
    in any wordlist language.

    The error names the source and the word count only: the words are the funds.
    """
    phrase = " ".join(text.lower().split())
    count = len(phrase.split(" ")) if phrase else 0
    if count in VALID_WORD_COUNTS and any(
            Mnemonic(language).is_mnemonic_valid(phrase)
            for language in Mnemonic.list_languages_enum()):
        return phrase
    raise ValueError(
        f"{source} is not a valid BIP-39 mnemonic ({count} words; expected "
        f"{', '.join(map(str, VALID_WORD_COUNTS))} words from a BIP-39 wordlist with a "
        "correct checksum)")


class HDWallet:
    """Accounts derived from one mnemonic, with their keys cached.

    The BIP-39 seed (PBKDF2, 2048 rounds of HMAC-SHA512) is computed once here; each
    account then costs one BIP-32 derivation, done once per index and cached. Safe for
    concurrent readers: the cache is a plain dict whose get and set are atomic under the
    GIL; two threads deriving the same index at once both store an equal account.
    """

    def __init__(self, mnemonic: str) -> None:
        self._seed = Mnemonic.to_seed(_checked(mnemonic, "the wallet mnemonic"))
        self._accounts: dict[int, LocalAccount] = {}

    def __repr__(self) -> str:
        return f"HDWallet(hot_address={self.hot_address!r})"

    def account(self, index: int) -> LocalAccount:
        """The account at ``m/44'/60'/0'/0/{index}`` (signs transactions and messages)."""
        account = self._accounts.get(index)
        if account is None:
            if not 0 <= index <= _MAX_INDEX:
                raise ValueError(f"account index must be 0 to {_MAX_INDEX}, got {index}")
            key = key_from_seed(self._seed, f"m/44'/60'/0'/0/{index}")
            account = Account.from_key(key)
            self._accounts[index] = account
        return account

    def address(self, index: int) -> str:
        """The EIP-55 checksummed address at ``index``."""
        return self.account(index).address

    def hot_account(self) -> LocalAccount:
        return self.account(HOT_WALLET_INDEX)

    @property
    def hot_address(self) -> str:
        return self.address(HOT_WALLET_INDEX)


def parse_address(text: str) -> str:
    """A withdrawal destination, checked and returned checksummed.

    Mixed case carries an EIP-55 checksum, which must match: a mistyped letter would
    otherwise send the funds to an address nobody holds. All-lowercase or all-uppercase
    hex carries no checksum and is accepted as given.

    Raises:
        ValueError: saying what is wrong (prefix, length, a non-hex digit, the checksum).
    """
    text = text.strip()
    if not text.startswith("0x"):
        raise ValueError(f"not a hex address: {text!r} does not start with 0x")
    digits = text[2:]
    if len(digits) != 40:
        raise ValueError(f"not a hex address: {text!r} has {len(digits)} hex digits after "
                         "0x, not 40")
    if not all(c in "0123456789abcdefABCDEF" for c in digits):
        raise ValueError(f"not a hex address: {text!r} has a character that is not a hex "
                         "digit")
    if digits != digits.lower() and digits != digits.upper() and \
            not is_checksum_address(text):
        raise ValueError(f"bad checksum: {text!r} is mixed-case but not its EIP-55 "
                         "checksummed form (a mistyped letter?)")
    return str(to_checksum_address(text))
