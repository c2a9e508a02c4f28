"""The HD wallet: known derivation vectors, the mnemonic file's life cycle (owner-only,
reused, never logged) and withdrawal address parsing."""

from __future__ import annotations

import logging
import re
import stat
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.hdaccount.mnemonic import Mnemonic
from eth_account.messages import encode_defunct

from excentra.chain.wallet import (
    HOT_WALLET_INDEX,
    HDWallet,
    mnemonic_path,
    parse_address,
    resolve_mnemonic,
)

# The Hardhat / Anvil development mnemonic and its first two accounts.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_ADDRESS_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
DEV_ADDRESS_1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@pytest.fixture(scope="module")
def wallet() -> HDWallet:
    return HDWallet(DEV_MNEMONIC)


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'exchange.db'}"


def test_known_vectors(wallet: HDWallet) -> None:
    assert wallet.address(0) == DEV_ADDRESS_0
    assert wallet.address(1) == DEV_ADDRESS_1
    assert HOT_WALLET_INDEX == 0
    assert wallet.hot_address == DEV_ADDRESS_0
    assert wallet.hot_account().address == DEV_ADDRESS_0


def test_account_key_signs_for_its_address(wallet: HDWallet) -> None:
    account = wallet.account(3)
    message = encode_defunct(text="withdrawal 42")
    signed = account.sign_message(message)
    assert Account.recover_message(message, signature=signed.signature) == wallet.address(3)


def test_same_addresses_after_restart(wallet: HDWallet) -> None:
    again = HDWallet(DEV_MNEMONIC)
    assert [again.address(i) for i in range(5)] == [wallet.address(i) for i in range(5)]


def test_addresses_distinct_and_cached(wallet: HDWallet) -> None:
    addresses = [wallet.address(i) for i in range(21)]
    assert len(set(addresses)) == 21
    assert wallet.account(7) is wallet.account(7)


def test_repr_shows_no_secret(wallet: HDWallet) -> None:
    assert "test" not in repr(wallet).replace(DEV_ADDRESS_0, "")


def test_index_out_of_range(wallet: HDWallet) -> None:
    with pytest.raises(ValueError, match="index"):
        wallet.account(-1)
    with pytest.raises(ValueError, match="index"):
        wallet.account(2**31)


def test_whitespace_and_case_are_normalised() -> None:
    loose = "  TEST test\ttest test test test test test test test test\n junk \n"
    assert HDWallet(loose).hot_address == DEV_ADDRESS_0


def test_configured_mnemonic_wins(tmp_path: Path) -> None:
    assert resolve_mnemonic(DEV_MNEMONIC, _url(tmp_path)) == DEV_MNEMONIC
    assert not mnemonic_path(_url(tmp_path)).exists()


@pytest.mark.parametrize("phrase", [
    "test test test test test test test test test test test test",  # bad checksum
    "test test test test test test test test test test junk",  # 11 words
    "test test test test test test test test test test test zzzzq",  # not a word
])
def test_invalid_configured_mnemonic(tmp_path: Path, phrase: str) -> None:
    with pytest.raises(ValueError, match="WALLET_MNEMONIC is not a valid BIP-39") as info:
        resolve_mnemonic(phrase, _url(tmp_path))
    for word in set(phrase.split()):
        assert word not in str(info.value)


def test_generated_mnemonic_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = _url(tmp_path)
    with caplog.at_level(logging.WARNING, logger="excentra.chain.wallet"):
        phrase = resolve_mnemonic("", url)
    path = tmp_path / "exchange.db.wallet-mnemonic"
    assert mnemonic_path(url) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == phrase + "\n"
    assert len(phrase.split()) == 24
    (tmp_path / "other").mkdir()
    other = resolve_mnemonic("", _url(tmp_path / "other"))  # another install: another wallet
    assert HDWallet(phrase).address(1) != HDWallet(other).address(1)
    [record] = [r for r in caplog.records if str(path.resolve()) in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert "back this file up" in record.getMessage().lower()
    assert phrase not in _logged(record)

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="excentra.chain.wallet"):
        assert resolve_mnemonic("", url) == phrase  # reused, silently
    assert caplog.records == []


def test_generation_log_has_none_of_the_words(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # A fixed phrase (BIP-39 test vector): a random one could contain "wallet" or "file",
    # which the message says anyway.
    fixed = " ".join(["legal winner thank year wave sausage worth useful"] * 3)
    fixed = fixed.rsplit(" ", 1)[0] + " title"
    monkeypatch.setattr(Mnemonic, "generate", lambda self, num_words=12: fixed)
    with caplog.at_level(logging.WARNING, logger="excentra.chain.wallet"):
        assert resolve_mnemonic("", _url(tmp_path)) == fixed
    [record] = caplog.records
    assert not set(fixed.split()) & set(re.findall(r"[a-z]+", _logged(record).lower()))


def _logged(record: logging.LogRecord) -> str:
    """Everything a log handler could write: the message and the extra fields."""
    return record.getMessage() + " " + repr(vars(record))


def test_open_file_permissions_are_warned(tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    url = _url(tmp_path)
    phrase = resolve_mnemonic("", url)
    mnemonic_path(url).chmod(0o644)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="excentra.chain.wallet"):
        assert resolve_mnemonic("", url) == phrase
    [record] = caplog.records
    assert "chmod 600" in record.getMessage()


def test_corrupt_file_fails_without_echo(tmp_path: Path) -> None:
    url = _url(tmp_path)
    mnemonic_path(url).write_text("test test test junk\n")
    with pytest.raises(ValueError, match="not a valid BIP-39") as info:
        resolve_mnemonic("", url)
    assert "junk" not in str(info.value)


def test_postgres_keeps_the_file_in_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = "postgresql://user@localhost/excentra"
    assert mnemonic_path(url) == Path("excentra-wallet.mnemonic")
    phrase = resolve_mnemonic("", url)
    assert (tmp_path / "excentra-wallet.mnemonic").read_text().strip() == phrase


def test_parse_address_accepts_checksummed_and_single_case() -> None:
    assert parse_address(DEV_ADDRESS_1) == DEV_ADDRESS_1
    assert parse_address(DEV_ADDRESS_1.lower()) == DEV_ADDRESS_1
    assert parse_address("0x" + DEV_ADDRESS_1[2:].upper()) == DEV_ADDRESS_1
    assert parse_address(f"  {DEV_ADDRESS_1}\n") == DEV_ADDRESS_1


def test_parse_address_rejects_a_flipped_letter() -> None:
    # "0x70997970C51812dc..." with the 'C' lowercased: still mixed case, checksum broken.
    flipped = DEV_ADDRESS_1.replace("C5", "c5", 1)
    assert flipped != DEV_ADDRESS_1
    with pytest.raises(ValueError, match="checksum"):
        parse_address(flipped)


@pytest.mark.parametrize(("text", "reason"), [
    (DEV_ADDRESS_1[:-1], "39 hex digits"),
    (DEV_ADDRESS_1 + "0", "41 hex digits"),
    (DEV_ADDRESS_1[2:], "does not start with 0x"),
    ("0X" + DEV_ADDRESS_1[2:], "does not start with 0x"),
    (DEV_ADDRESS_1[:-1] + "g", "not a hex digit"),
    ("", "does not start with 0x"),
    ("alice.eth", "does not start with 0x"),
])
def test_parse_address_rejects_non_addresses(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_address(text)
