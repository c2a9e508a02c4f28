"""ChainSettings: the defaults, a full ETH_* environment, and an error naming the variable
for every kind of bad item."""

from __future__ import annotations

from decimal import Decimal

import pytest

from excentra.chain.settings import ChainSettings, Token

USDT = "0xdAC17F958D2ee523a2206206994597C13D831ec7"
DAI = "0x6B175474E89094C44Da98b954EedeAC495271d0F"


def test_defaults() -> None:
    s = ChainSettings.from_env({})
    assert s == ChainSettings()
    assert s.name == "ethereum"
    assert not s.enabled
    assert s.confirmations == 12
    assert s.poll_interval == 2.0
    assert s.assets == ("ETH",)
    assert s.token("ETH") is None
    assert dict(s.min_deposit) == {"ETH": Decimal("0.0001")}
    assert dict(s.withdrawal_fee) == {"ETH": Decimal("0.0005")}
    assert dict(s.withdrawal_min) == {"ETH": Decimal("0.001")}
    assert dict(s.approval_above) == {}
    assert s.start_block is None
    assert s.max_blocks_per_poll == 500
    assert s.gas_limit_token == 100_000


def test_full_environment() -> None:
    s = ChainSettings.from_env({
        "ETH_RPC_URL": "https://rpc.example/v3/key",
        "ETH_CONFIRMATIONS": "3",
        "ETH_POLL_INTERVAL": "0.5",
        "ETH_TOKENS": f"usdt:{USDT.lower()}:6, DAI:{DAI}:18",
        "ETH_MIN_DEPOSIT": "ETH:0.001,USDT:1",
        "ETH_WITHDRAWAL_FEE": "ETH:0.0004, usdt:2",
        "ETH_WITHDRAWAL_MIN": "DAI:10",
        "ETH_APPROVAL_ABOVE": "ETH:10,USDT:10000",
        "ETH_START_BLOCK": "19000000",
        "ETH_MAX_BLOCKS_PER_POLL": "100",
        "ETH_GAS_LIMIT_TOKEN": "65000",
    })
    assert s.enabled
    assert s.rpc_url == "https://rpc.example/v3/key"
    assert "key" not in repr(s)
    assert (s.confirmations, s.poll_interval) == (3, 0.5)
    assert s.tokens == (Token("USDT", USDT, 6), Token("DAI", DAI, 18))
    assert s.assets == ("ETH", "USDT", "DAI")
    assert s.token("USDT") == Token("USDT", USDT, 6)
    assert s.token("USDC") is None
    assert dict(s.min_deposit) == {"ETH": Decimal("0.001"), "USDT": Decimal(1),
                                   "DAI": Decimal(0)}
    assert dict(s.withdrawal_fee) == {"ETH": Decimal("0.0004"), "USDT": Decimal(2),
                                      "DAI": Decimal(1)}
    assert dict(s.withdrawal_min) == {"ETH": Decimal("0.001"), "USDT": Decimal(5),
                                      "DAI": Decimal(10)}
    assert dict(s.approval_above) == {"ETH": Decimal(10), "USDT": Decimal(10000)}
    assert all(isinstance(v, Decimal) for v in s.withdrawal_fee.values())
    assert (s.start_block, s.max_blocks_per_poll, s.gas_limit_token) == (19_000_000, 100,
                                                                         65_000)


def test_maps_are_read_only() -> None:
    s = ChainSettings()
    with pytest.raises(TypeError):
        s.min_deposit["ETH"] = Decimal(0)  # type: ignore[index]


def test_direct_construction_fills_token_defaults() -> None:
    s = ChainSettings(tokens=(Token("USDT", USDT.lower(), 6),),
                      withdrawal_fee={"USDT": Decimal(3)})
    assert s.tokens[0].contract == USDT
    assert dict(s.withdrawal_fee) == {"ETH": Decimal("0.0005"), "USDT": Decimal(3)}
    with pytest.raises(ValueError, match="unknown asset 'DAI'"):
        ChainSettings(min_deposit={"DAI": Decimal(1)})
    with pytest.raises(ValueError, match="finite decimal"):
        ChainSettings(min_deposit={"ETH": 0.1})  # type: ignore[dict-item]


@pytest.mark.parametrize(("var", "value", "message"), [
    ("ETH_TOKENS", "USDT:0x12:6", "ETH_TOKENS item 'USDT:0x12:6': contract is not an address"),
    ("ETH_TOKENS", f"USDT:{USDT}", "ETH_TOKENS item .*: expected SYMBOL:CONTRACT:DECIMALS"),
    ("ETH_TOKENS", f"USDT:{USDT}:six", "ETH_TOKENS item .*: decimals 'six'"),
    ("ETH_TOKENS", f"USDT:{USDT}:256", "ETH_TOKENS item .*: decimals must be 0 to 255"),
    ("ETH_TOKENS", f"TOOLONGSYMBOL:{USDT}:6", "ETH_TOKENS item .*: symbol"),
    ("ETH_TOKENS", f"US-DT:{USDT}:6", "ETH_TOKENS item .*: symbol"),
    ("ETH_TOKENS", f"ETH:{USDT}:18", "ETH_TOKENS item .*: ETH is the chain's own coin"),
    ("ETH_TOKENS", f"USDT:{USDT}:6,USDT:{DAI}:18", "ETH_TOKENS item .*: symbol USDT is listed"),
    ("ETH_TOKENS", f"USDT:{USDT}:6,TUSD:{USDT}:6", "ETH_TOKENS item .*: contract .* listed"),
    ("ETH_TOKENS", f"USDT:{USDT.replace('dAC', 'DAC')}:6", "ETH_TOKENS item .*checksum"),
    ("ETH_MIN_DEPOSIT", "ETH", "ETH_MIN_DEPOSIT item 'ETH': expected SYMBOL:AMOUNT"),
    ("ETH_MIN_DEPOSIT", "ETH:", "ETH_MIN_DEPOSIT item 'ETH:': expected SYMBOL:AMOUNT"),
    ("ETH_MIN_DEPOSIT", "USDC:1", "ETH_MIN_DEPOSIT item 'USDC:1': unknown asset 'USDC'"),
    ("ETH_WITHDRAWAL_FEE", "ETH:abc", "ETH_WITHDRAWAL_FEE item 'ETH:abc': 'abc' is not a"),
    ("ETH_WITHDRAWAL_FEE", "ETH:-1", "ETH_WITHDRAWAL_FEE item 'ETH:-1': .*0 or more"),
    ("ETH_WITHDRAWAL_MIN", "ETH:NaN", "ETH_WITHDRAWAL_MIN item 'ETH:NaN': .*finite"),
    ("ETH_WITHDRAWAL_MIN", "ETH:Infinity", "ETH_WITHDRAWAL_MIN item .*finite"),
    ("ETH_APPROVAL_ABOVE", "ETH:1,eth:2", "ETH_APPROVAL_ABOVE item 'eth:2': ETH is listed"),
    ("ETH_RPC_URL", "mainnet.infura.io/v3/secret", "ETH_RPC_URL: rpc_url must start with"),
    ("ETH_CONFIRMATIONS", "twelve", "ETH_CONFIRMATIONS must be a whole number"),
    ("ETH_CONFIRMATIONS", "-1", "ETH_CONFIRMATIONS: confirmations must be 0 or more"),
    ("ETH_POLL_INTERVAL", "soon", "ETH_POLL_INTERVAL must be a number"),
    ("ETH_POLL_INTERVAL", "0", "ETH_POLL_INTERVAL: poll_interval must be a positive"),
    ("ETH_POLL_INTERVAL", "nan", "ETH_POLL_INTERVAL: poll_interval must be a positive"),
    ("ETH_START_BLOCK", "-5", "ETH_START_BLOCK: start_block must be 0 or more"),
    ("ETH_START_BLOCK", "1.5", "ETH_START_BLOCK must be a whole number"),
    ("ETH_MAX_BLOCKS_PER_POLL", "0", "ETH_MAX_BLOCKS_PER_POLL: max_blocks_per_poll"),
    ("ETH_GAS_LIMIT_TOKEN", "20000", "ETH_GAS_LIMIT_TOKEN: gas_limit_token must be at least"),
])
def test_bad_item_names_the_variable(var: str, value: str, message: str) -> None:
    env = {"ETH_TOKENS": f"USDT:{USDT}:6"} if var != "ETH_TOKENS" else {}
    env[var] = value
    with pytest.raises(ValueError, match=message) as info:
        ChainSettings.from_env(env)
    if var == "ETH_RPC_URL":
        assert "secret" not in str(info.value)


def test_blank_values_keep_defaults() -> None:
    env = dict.fromkeys(("ETH_RPC_URL", "ETH_CONFIRMATIONS", "ETH_TOKENS",
                         "ETH_MIN_DEPOSIT", "ETH_START_BLOCK"), "  ")
    assert ChainSettings.from_env(env) == ChainSettings()
