"""An in-process Ethereum dev chain (eth-tester on py-evm) for tests and the demo.

``ChainOps`` holds the transactions every dev chain needs (send ETH, deploy and move the
test token), written once over web3 so the in-process chain and a real JSON-RPC node
(ganache, in the tests) behave alike. ``DevChain`` adds mining, snapshots and reverts,
which each backend does its own way.

eth-tester reports chain id 131277322940537 (ganache in the tests uses 1337): code must ask
``eth_chainId`` and never assume one.
"""

from __future__ import annotations

import abc
import contextlib
import threading
from collections.abc import Iterator
from typing import Any, cast

from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.exceptions import TransactionFailed
from eth_typing import ABI, ChecksumAddress, HexStr
from hexbytes import HexBytes
from web3 import EthereumTesterProvider, Web3
from web3.types import RPCEndpoint, RPCResponse, TxParams, TxReceipt, Wei

from excentra.chain import erc20

Sender = str | LocalAccount | None
"""Who pays: None for the funder, an address the node holds unlocked, or a local key."""

PRIORITY_FEE = Wei(10**9)
"""The tip of locally signed transactions (1 gwei): dev chains mine whatever pays a base fee."""

RECEIPT_TIMEOUT = 30.0
"""Seconds to wait for a receipt: both dev chains mine on arrival, so this only bounds a hang."""


class ChainOps:
    """Transactions shared by every dev chain; a subclass sets ``w3`` and ``funder``.

    Each method waits for its receipt (the chains mine on arrival) and returns the
    transaction hash as 0x hex, so a test can go on reading the new state at once.
    """

    w3: Web3
    funder: ChecksumAddress
    _batch: list[HexBytes] | None = None
    """Inside ``BatchingChain.one_block``: the transactions sent, not yet mined."""

    def send_eth(self, to: str, wei: int, sender: Sender = None) -> HexStr:
        """Send ``wei`` from the funder (or ``sender``) to ``to``."""
        tx: TxParams = {"to": Web3.to_checksum_address(to), "value": Wei(wei)}
        return self.transact(tx, sender)

    def deploy_token(
        self, name: str, symbol: str, decimals: int, supply_units: int
    ) -> ChecksumAddress:
        """Deploy the test ERC-20 minting ``supply_units`` (base units) to the funder;
        returns the token's checksum address."""
        factory = self.w3.eth.contract(abi=cast(ABI, erc20.ABI), bytecode=erc20.BYTECODE)
        data = factory.constructor(name, symbol, decimals, supply_units).data_in_transaction
        tx_hash = self.transact({"data": data})
        address = self.receipt(tx_hash)["contractAddress"]
        if address is None:
            raise RuntimeError(f"token deployment {tx_hash} created no contract")
        return Web3.to_checksum_address(address)

    def send_token(
        self, token: str, to: str, units: int, sender: Sender = None, gas: int | None = None
    ) -> HexStr:
        """Transfer ``units`` (base units) of ``token`` to ``to``.

        Give ``gas`` to send a transfer that will revert: estimation would refuse it,
        while a fixed limit gets it mined with a status-0 receipt.
        """
        contract = self.w3.eth.contract(
            address=Web3.to_checksum_address(token), abi=cast(ABI, erc20.ABI)
        )
        data = contract.encode_abi("transfer", args=[Web3.to_checksum_address(to), units])
        tx: TxParams = {"to": contract.address, "data": data}
        if gas is not None:
            tx["gas"] = gas
        return self.transact(tx, sender)

    def token_balance(self, token: str, owner: str) -> int:
        """``balanceOf(owner)`` of ``token``, in base units."""
        contract = self.w3.eth.contract(
            address=Web3.to_checksum_address(token), abi=cast(ABI, erc20.ABI)
        )
        return int(contract.functions.balanceOf(Web3.to_checksum_address(owner)).call())

    def transact(self, tx: TxParams, sender: Sender = None) -> HexStr:
        """Send ``tx`` from the node's unlocked ``sender`` (default the funder), or sign it
        here as an EIP-1559 transaction when ``sender`` is a local key; wait until mined."""
        if isinstance(sender, LocalAccount):
            tx_hash = self._send_signed(dict(tx), sender)
        else:
            sent: TxParams = {**tx, "from": Web3.to_checksum_address(sender or self.funder)}
            tx_hash = self.w3.eth.send_transaction(sent)
        if self._batch is not None:
            self._batch.append(tx_hash)
        else:
            self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT)
        return HexStr(tx_hash.to_0x_hex())

    def receipt(self, tx_hash: str) -> TxReceipt:
        """The receipt of a mined transaction."""
        return self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))

    def _send_signed(self, tx: dict[str, Any], account: LocalAccount) -> HexBytes:
        eth = self.w3.eth
        base_fee = eth.get_block("latest").get("baseFeePerGas", 0)
        tx.update(
            {
                "from": account.address,
                "chainId": eth.chain_id,
                "nonce": eth.get_transaction_count(account.address, "pending"),
                "type": 2,
                "maxPriorityFeePerGas": PRIORITY_FEE,
                "maxFeePerGas": Wei(2 * base_fee + PRIORITY_FEE),
            }
        )
        if "gas" not in tx:
            tx["gas"] = eth.estimate_gas(cast(TxParams, tx))
        signed = account.sign_transaction(tx)
        return eth.send_raw_transaction(signed.raw_transaction)

    def head(self) -> int:
        """The number of the latest block."""
        return self.w3.eth.block_number


class BatchingChain(ChainOps, abc.ABC):
    """A dev chain that can hold mining back, to put several transactions in one block."""

    @contextlib.contextmanager
    def one_block(self) -> Iterator[None]:
        """Everything sent inside goes into one block, mined on leaving. One transaction
        per sender (eth-tester checks a nonce on arrival, against the last block): send
        from different accounts (``w3.eth.accounts``)."""
        self._batch = []
        self._stop_mining()
        try:
            yield
        finally:
            sent, self._batch = self._batch, None
            self._mine_pending()
        for tx_hash in sent:
            self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT)

    @abc.abstractmethod
    def _stop_mining(self) -> None:
        """Transactions wait in the pool from now on."""

    @abc.abstractmethod
    def _mine_pending(self) -> None:
        """Mine one block with everything pending; mine on arrival again."""


class LockedTesterProvider(EthereumTesterProvider):
    """eth-tester is not thread-safe; a watcher thread and the test thread share it, so
    every request (and every direct call on the tester, see ``DevChain``) takes ``lock``.

    A revert in ``eth_call`` / ``eth_estimateGas`` is answered as geth answers it (an RPC
    error, code 3), so web3 raises its ``ContractLogicError`` and not eth-tester's own
    ``TransactionFailed``, which code written against a real node would not expect.
    """

    def __init__(self, tester: EthereumTester) -> None:
        super().__init__(tester)
        self.lock = threading.Lock()

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        """Serve one request while holding the lock."""
        with self.lock:
            try:
                return super().make_request(method, params)
            except TransactionFailed as exc:
                return cast(
                    RPCResponse,
                    {
                        "id": repr(self._current_request_id),
                        "jsonrpc": "2.0",
                        "error": {"code": 3, "message": str(exc), "data": None},
                    },
                )


class DevChain(BatchingChain):
    """A fresh in-process chain: eth-tester's ten funded accounts, auto-mining (one block
    per transaction, as ganache does by default), EIP-1559 fees (London and later)."""

    url: str | None = None

    def __init__(self) -> None:
        self.tester = EthereumTester(PyEVMBackend())
        self._provider = LockedTesterProvider(self.tester)
        self.w3 = Web3(self._provider)
        with self._provider.lock:
            accounts: list[str] = list(self.tester.get_accounts())
        self.funder = Web3.to_checksum_address(accounts[0])

    def mine(self, n: int = 1) -> None:
        """Mine ``n`` empty blocks."""
        with self._provider.lock:
            self.tester.mine_blocks(n)

    def _stop_mining(self) -> None:
        with self._provider.lock:
            self.tester.disable_auto_mine_transactions()

    def _mine_pending(self) -> None:
        with self._provider.lock:
            self.tester.enable_auto_mine_transactions()  # mines what is pending: one block

    def snapshot(self) -> object:
        """A handle to the current state, for ``revert``."""
        with self._provider.lock:
            return cast(object, self.tester.take_snapshot())

    def revert(self, snap: object) -> None:
        """Go back to ``snap``; blocks mined afterwards get new hashes (py-evm draws a random
        mix hash per block), which is how tests make reorgs."""
        with self._provider.lock:
            self.tester.revert_to_snapshot(snap)
