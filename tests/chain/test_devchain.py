"""The dev-chain harnesses do what the chain-watcher tests rely on, on eth-tester and on
ganache alike: token deploys and transfers with decodable logs, ETH transfers, a failed
token transfer mined with status 0, reorgs by snapshot and revert, EIP-1559 fees."""

from __future__ import annotations

import threading

import pytest
from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3RPCError

from excentra.chain import erc20
from tests.chain.nodes import ChainHarness

SUPPLY = 1_000_000 * 10**6


def test_token_transfer_log_decodes(chain: ChainHarness) -> None:
    token = chain.deploy_token("Test USD", "TUSD", 6, SUPPLY)
    receiver = Account.create().address
    tx_hash = chain.send_token(token, receiver, 1_234_567)

    receipt = chain.w3.eth.get_transaction_receipt(tx_hash)
    assert receipt["status"] == 1
    logs = chain.w3.eth.get_logs({
        "fromBlock": receipt["blockNumber"],
        "toBlock": receipt["blockNumber"],
        "address": Web3.to_checksum_address(token),
        "topics": [erc20.transfer_topic()],
    })
    assert [erc20.decode_transfer(log) for log in logs] == [
        (chain.funder, receiver, 1_234_567)
    ]
    assert erc20.decode_transfer(receipt["logs"][0]) == (chain.funder, receiver, 1_234_567)
    assert chain.token_balance(token, receiver) == 1_234_567
    assert chain.token_balance(token, chain.funder) == SUPPLY - 1_234_567


def test_eth_transfer_lands(chain: ChainHarness) -> None:
    receiver = Account.create().address
    head = chain.head()
    tx_hash = chain.send_eth(receiver, 3 * 10**17)

    assert chain.w3.eth.get_balance(receiver) == 3 * 10**17
    receipt = chain.w3.eth.get_transaction_receipt(tx_hash)
    assert (receipt["status"], receipt["blockNumber"]) == (1, head + 1)  # one block per tx
    block = chain.w3.eth.get_block(receipt["blockNumber"], full_transactions=True)
    [tx] = block["transactions"]
    assert not isinstance(tx, bytes)
    assert (tx["to"], tx["value"]) == (receiver, 3 * 10**17)


def test_token_transfer_beyond_balance_is_mined_with_status_0(chain: ChainHarness) -> None:
    token = chain.deploy_token("Test USD", "TUSD", 6, SUPPLY)
    tx_hash = chain.send_token(token, Account.create().address, SUPPLY + 1, gas=100_000)

    receipt = chain.w3.eth.get_transaction_receipt(tx_hash)
    assert receipt["status"] == 0
    assert receipt["logs"] == []
    assert chain.token_balance(token, chain.funder) == SUPPLY


def test_revert_and_mine_makes_a_reorg(chain: ChainHarness) -> None:
    snap = chain.snapshot()
    chain.mine(3)
    height = chain.head()
    abandoned = chain.w3.eth.get_block(height)["hash"]

    chain.revert(snap)
    assert chain.head() == height - 3
    chain.mine(3)

    assert chain.head() == height
    assert chain.w3.eth.get_block(height)["hash"] != abandoned


def test_eip1559_transaction_from_a_local_key(chain: ChainHarness) -> None:
    account = Account.create()
    chain.send_eth(account.address, 10**18)
    before = chain.w3.eth.get_balance(account.address)

    tx_hash = chain.send_eth(chain.funder, 10**15, sender=account)

    receipt = chain.w3.eth.get_transaction_receipt(tx_hash)
    assert receipt["status"] == 1
    assert receipt["type"] == 2
    tx = chain.w3.eth.get_transaction(tx_hash)
    assert tx["maxPriorityFeePerGas"] > 0
    fee = receipt["effectiveGasPrice"] * receipt["gasUsed"]
    assert fee > 0
    assert before - chain.w3.eth.get_balance(account.address) - 10**15 == fee


def test_reverting_call_raises_contract_logic_error(chain: ChainHarness) -> None:
    """eth-tester's own TransactionFailed comes out as a node's revert would."""
    token = chain.deploy_token("Test USD", "TUSD", 6, SUPPLY)
    contract = chain.w3.eth.contract(address=Web3.to_checksum_address(token), abi=erc20.ABI)
    transfer = contract.functions.transfer(Account.create().address, SUPPLY + 1)

    with pytest.raises(ContractLogicError, match="insufficient balance"):
        transfer.estimate_gas({"from": chain.funder})
    # ganache answers a reverted eth_call with "VM Exception ... revert <reason>" (code
    # -32000), which web3 8 raises as a plain Web3RPCError; geth's answer (code 3,
    # "execution reverted") and eth-tester's give ContractLogicError.
    with pytest.raises((ContractLogicError, Web3RPCError), match="insufficient balance"):
        transfer.call({"from": chain.funder})


def test_a_watcher_thread_reads_while_the_test_sends(chain: ChainHarness) -> None:
    """The chain watcher polls from its own thread while the test thread transacts."""
    token = chain.deploy_token("Test USD", "TUSD", 6, SUPPLY)
    stop = threading.Event()
    errors: list[BaseException] = []
    seen: set[str] = set()

    def watch() -> None:
        try:
            while not stop.is_set():
                head = chain.w3.eth.block_number
                chain.w3.eth.get_block(head, full_transactions=True)
                for log in chain.w3.eth.get_logs({"fromBlock": 0, "toBlock": head,
                                                  "topics": [erc20.transfer_topic()]}):
                    seen.add(erc20.decode_transfer(log)[1])
        except BaseException as exc:  # handed to the test thread, which fails on it
            errors.append(exc)

    watcher = threading.Thread(target=watch, name="chain-watcher-test")
    watcher.start()
    receivers = [Account.create().address for _ in range(10)]
    try:
        for receiver in receivers:
            chain.send_token(token, receiver, 1)
            chain.send_eth(receiver, 1)
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert not watcher.is_alive()
    assert errors == []
    final = {erc20.decode_transfer(log)[1] for log in chain.w3.eth.get_logs(
        {"fromBlock": 0, "toBlock": "latest", "topics": [erc20.transfer_topic()]})}
    assert set(receivers) <= final
