"""Sweeping: deposit addresses' funds move to the hot wallet, which pays withdrawals.

The policy (run by the watcher in rounds — at most every ``ETH_SWEEP_INTERVAL``, once it
has caught up with the chain — for addresses that received a credited deposit; all
transactions recorded in ``chain_transactions`` before they are broadcast):

* **ETH**: everything but the gas, in a legacy (type 0) transaction — its fee is exactly
  ``21000 × gasPrice``, so the address is left with nothing at all. Not swept while the
  balance is below twice that fee plus the asset's minimum deposit (not worth the gas).
* **Tokens**: the address has no ETH for gas, so the hot wallet first sends it exactly
  the gas one token transfer may need (``gas_limit_token × gasPrice``, less what it has);
  once that is mined, the address sends its whole token balance to the hot wallet. What
  the transfer does not burn of that gas stays on the address (at most the limit's slack).
* One transaction per address at a time; a recorded one the node lost is sent again.

Sweeps move funds between the exchange's own addresses: no user balance changes, so the
ledger is not involved. The gas is the exchange's cost (what the withdrawal fee is for).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from excentra.chain.node import Node
from excentra.chain.settings import ETH, ETH_DECIMALS, ETH_TRANSFER_GAS, ChainSettings
from excentra.chain.store import ChainStore
from excentra.chain.wallet import HDWallet

log = logging.getLogger("excentra.chain")



class Sweeper:
    def __init__(self, settings: ChainSettings, wallet: HDWallet, node: Node,
                 store: ChainStore, run: Callable[[Any], Any],
                 take_nonce: Callable[[], int]) -> None:
        self.settings = settings
        self.wallet = wallet
        self.node = node
        self.store = store
        self._run = run
        self._take_nonce = take_nonce
        self.dirty: set[str] = set()
        """Deposit addresses (lowercase) that may hold funds to sweep."""
        self.indexes: dict[str, int] = {}
        """Deposit address → derivation index (to sign from it)."""
        self.sweeps = 0

    def run(self, head: int) -> None:
        busy = self._follow_open()
        todo = sorted(self.dirty - busy)
        if not todo:
            return
        price = self.node.gas_price()  # one read for the round
        for address in todo:
            if self._sweep(address, price):
                continue
            self.dirty.discard(address)

    def _follow_open(self) -> set[str]:
        """Mark mined sweep/gas transactions; re-send lost ones. The addresses with one
        still open (either end of it) are busy."""
        busy: set[str] = set()
        for tx in self._run(self.store.open_transactions()):
            receipt = self.node.receipt(tx["tx_hash"])
            if receipt is not None:
                self._run(self.store.transaction_done(tx["id"], receipt.ok))
                continue
            if not self.node.known(tx["tx_hash"]):
                self.node.send_raw(tx["raw_tx"])
            busy.add(tx["to_address"] if tx["purpose"] == "gas" else tx["from_address"])
        return busy

    def _sweep(self, address: str, price: int) -> bool:
        """One step of sweeping ``address`` at gas ``price``; ``True`` while more remains
        to do."""
        index = self.indexes.get(address)
        if index is None:
            return False
        for token in self.settings.tokens:
            units = self.node.token_balance(token.contract, address)
            if units == 0:
                continue
            gas = self.settings.gas_limit_token * price
            have = self.node.balance(address)
            if have < gas:
                self._send_from_hot(address, gas - have, price)
                return True
            account = self.wallet.account(index)
            tx = {"nonce": self.node.nonce(account.address), "to": token.contract,
                  "value": 0, "gas": self.settings.gas_limit_token, "gasPrice": price,
                  "chainId": self.node.chain_id(),
                  "data": self.node.token_call_data(token.contract,
                                                    self.wallet.hot_address, units)}
            self._send(account, tx, "sweep", self.wallet.hot_address, token.symbol,
                       Decimal(units).scaleb(-token.decimals))
            return True
        balance = self.node.balance(address)
        fee = ETH_TRANSFER_GAS * price
        floor = self.settings.min_deposit.get(ETH, Decimal(0)).scaleb(ETH_DECIMALS)
        if balance > 2 * fee + floor:
            account = self.wallet.account(index)
            value = balance - fee
            self._send(account, {"nonce": self.node.nonce(account.address),
                                 "to": self.wallet.hot_address, "value": value,
                                 "gas": ETH_TRANSFER_GAS, "gasPrice": price,
                                 "chainId": self.node.chain_id()},
                       "sweep", self.wallet.hot_address, ETH, Decimal(value).scaleb(-ETH_DECIMALS))
            return True
        return False

    def _send_from_hot(self, address: str, wei: int, price: int) -> None:
        if self.node.balance(self.wallet.hot_address) < wei + ETH_TRANSFER_GAS * price:
            log.warning("hot wallet short of ETH for sweeping gas; the tokens wait",
                        extra={"address": address})
            return  # nothing signed, no nonce taken (a refused one would block the rest)
        tx = {"nonce": self._take_nonce(), "to": self.node.w3.to_checksum_address(address),
              "value": wei, "gas": ETH_TRANSFER_GAS, "gasPrice": price,
              "chainId": self.node.chain_id()}
        self._send(self.wallet.hot_account(), tx, "gas", address, ETH,
                   Decimal(wei).scaleb(-ETH_DECIMALS))

    def _send(self, account: Any, tx: dict[str, Any], purpose: str, to: str, asset: str,
              amount: Decimal) -> None:
        tx_hash, raw = self.node.sign(account, tx)
        self._run(self.store.record_transaction(purpose, account.address, to, asset,
                                                amount, tx["nonce"], tx_hash, raw))
        self.node.send_raw(raw)
        self.sweeps += 1
        log.info("sweep transaction sent", extra={
            "purpose": purpose, "from": account.address, "to": to, "asset": asset,
            "amount": str(amount), "tx_hash": tx_hash})
