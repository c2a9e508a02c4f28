"""The Ethereum node as the watcher sees it: the few JSON-RPC calls it makes, through web3.

Synchronous on purpose: only the watcher's own thread calls it, so a slow or dead node
delays deposits and withdrawals and nothing else. Every failure of the node (refused,
timed out, a JSON-RPC error) surfaces as ``NodeError``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import requests
from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import TransactionNotFound
from web3.providers import HTTPProvider

from excentra.chain import erc20

RPC_TIMEOUT = 10.0
"""Seconds one JSON-RPC call may take."""


class NodeError(Exception):
    """The node did not answer, or answered with an error."""


class TransactionRefused(Exception):  # noqa: N818 (a refusal, like RejectCode's)
    """The node answered, refusing a transaction (e.g. the sender cannot pay its gas): the
    node is fine; the transaction, or the account, is not."""


_UNREACHABLE = (OSError, requests.exceptions.ConnectionError, requests.exceptions.Timeout)
"""How an unreachable or silent node shows (not an answer)."""


@dataclass(frozen=True, slots=True)
class Transfer:
    """Value arriving at an address: native (``log_index`` -1) or a token's ``Transfer``."""

    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    to: str
    """Lowercase hex."""
    value: int
    token: str | None
    """The token contract (checksummed); ``None`` for the native coin."""
    sender: str
    """Lowercase hex."""


@dataclass(frozen=True, slots=True)
class Receipt:
    block_number: int
    ok: bool
    gas_used: int
    effective_gas_price: int


def _hex(value: Any) -> str:
    return value.to_0x_hex() if hasattr(value, "to_0x_hex") else str(value)


class Node:
    """One chain's node (``w3``: any web3 instance — HTTP, or an in-process tester)."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3

    @classmethod
    def connect(cls, url: str) -> Node:
        return cls(Web3(HTTPProvider(url, request_kwargs={"timeout": RPC_TIMEOUT})))

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TransactionNotFound:
            raise
        except Exception as exc:  # connection refused, timeout, JSON-RPC error, ...
            raise NodeError(f"{type(exc).__name__}: {exc}") from exc

    def chain_id(self) -> int:
        return int(self._call(lambda: self.w3.eth.chain_id))

    def head(self) -> int:
        return int(self._call(lambda: self.w3.eth.block_number))

    def block_hash(self, number: int) -> str | None:
        try:
            block = self._call(self.w3.eth.get_block, number)
        except NodeError:
            if number > self.head():
                return None
            raise
        return _hex(block["hash"])

    def transfers(self, first: int, last: int, addresses: set[str],
                  tokens: Iterable[str]) -> tuple[list[Transfer], dict[int, str]]:
        """Native and token transfers to ``addresses`` (lowercase) in blocks
        ``first..last``, and those blocks' hashes. A native transfer counts only if its
        transaction succeeded; a token ``Transfer`` log exists only if it did."""
        found: list[Transfer] = []
        hashes: dict[int, str] = {}
        for number in range(first, last + 1):
            block = self._call(self.w3.eth.get_block, number, full_transactions=True)
            block_hash = _hex(block["hash"])
            hashes[number] = block_hash
            for tx in block["transactions"]:
                to = tx.get("to")
                if to is None or tx["value"] == 0 or to.lower() not in addresses:
                    continue
                receipt = self.receipt(_hex(tx["hash"]))
                if receipt is not None and receipt.ok:
                    found.append(Transfer(_hex(tx["hash"]), -1, number, block_hash,
                                          to.lower(), int(tx["value"]), None,
                                          str(tx["from"]).lower()))
        contracts = list(tokens)
        if contracts:
            logs = self._call(self.w3.eth.get_logs, {
                "fromBlock": first, "toBlock": last, "address": contracts,
                "topics": [erc20.transfer_topic()]})
            for log in logs:
                sender, to, value = erc20.decode_transfer(log)
                number = int(log["blockNumber"])
                if to.lower() in addresses and value > 0 and number in hashes:
                    found.append(Transfer(_hex(log["transactionHash"]), int(log["logIndex"]),
                                          number, _hex(log["blockHash"]), to.lower(), value,
                                          Web3.to_checksum_address(log["address"]),
                                          sender.lower()))
        return found, hashes

    def receipt(self, tx_hash: str) -> Receipt | None:
        try:
            r = self._call(self.w3.eth.get_transaction_receipt, tx_hash)
        except TransactionNotFound:
            return None
        if r is None or r.get("blockNumber") is None:
            return None
        return Receipt(int(r["blockNumber"]), int(r["status"]) == 1, int(r["gasUsed"]),
                       int(r.get("effectiveGasPrice") or 0))

    def known(self, tx_hash: str) -> bool:
        """Whether the node has the transaction (mined or waiting in its pool)."""
        try:
            self._call(self.w3.eth.get_transaction, tx_hash)
        except TransactionNotFound:
            return False
        return True

    def nonce(self, address: str, pending: bool = True) -> int:
        return int(self._call(self.w3.eth.get_transaction_count, address,
                              "pending" if pending else "latest"))

    def balance(self, address: str) -> int:
        return int(self._call(self.w3.eth.get_balance, Web3.to_checksum_address(address)))

    def token_balance(self, token: str, address: str) -> int:
        contract = self.w3.eth.contract(address=Web3.to_checksum_address(token),
                                        abi=erc20.ABI)
        return int(self._call(contract.functions.balanceOf(
            Web3.to_checksum_address(address)).call))

    def fees(self) -> tuple[int, int]:
        """``(max fee, priority fee)`` per gas for an EIP-1559 transaction: twice the
        latest base fee plus the tip, so it stays valid through several full blocks."""
        block = self._call(self.w3.eth.get_block, "latest")
        base = int(block.get("baseFeePerGas") or 0)
        try:
            tip = int(self._call(lambda: self.w3.eth.max_priority_fee))
        except NodeError:  # not every node implements eth_maxPriorityFeePerGas
            tip = 10 ** 9
        return 2 * base + tip, tip

    @staticmethod
    def fees_of(raw_tx: str) -> tuple[int, int]:
        """``(max fee, priority fee)`` per gas of a signed EIP-1559 transaction."""
        tx = TypedTransaction.from_bytes(HexBytes(raw_tx)).as_dict()
        return int(tx["maxFeePerGas"]), int(tx["maxPriorityFeePerGas"])

    def gas_price(self) -> int:
        return int(self._call(lambda: self.w3.eth.gas_price))

    def send_raw(self, raw_tx: str) -> None:
        """Broadcast a signed transaction; one the node already has is not an error. A
        node that cannot be reached is a ``NodeError``; one that refuses the transaction
        (``TransactionRefused``) is up."""
        try:
            self.w3.eth.send_raw_transaction(HexBytes(raw_tx))
        except _UNREACHABLE as exc:
            raise NodeError(f"{type(exc).__name__}: {exc}") from exc
        except Exception as exc:
            text = str(exc).lower()
            if "already known" in text or "known transaction" in text or (
                    "nonce too low" in text):
                return  # sent before (a restart re-sends what it recorded)
            raise TransactionRefused(f"{type(exc).__name__}: {exc}"[:500]) from exc

    def sign(self, account: LocalAccount, tx: dict[str, Any]) -> tuple[str, str]:
        """``(tx hash, raw)`` of ``tx`` signed by ``account``."""
        signed = account.sign_transaction(tx)
        return _hex(signed.hash), _hex(signed.raw_transaction)

    def token_call_data(self, token: str, to: str, units: int) -> str:
        contract = self.w3.eth.contract(address=Web3.to_checksum_address(token),
                                        abi=erc20.ABI)
        data: str = contract.encode_abi("transfer", [Web3.to_checksum_address(to), units])
        return data
