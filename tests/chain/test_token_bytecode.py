"""The committed ERC-20 ABI and bytecode (excentra/chain/erc20.py) are what the installed
vyper compiles from token.vy; regenerate with ``.venv/bin/python tests/chain/gen_erc20.py``."""

from __future__ import annotations

from excentra.chain import erc20
from tests.chain import gen_erc20

REGENERATE = "regenerate with: .venv/bin/python tests/chain/gen_erc20.py"


def test_committed_abi_and_bytecode_match_the_source() -> None:
    abi, bytecode = gen_erc20.compile_token()
    assert abi == erc20.ABI, REGENERATE
    assert bytecode == erc20.BYTECODE, REGENERATE


def test_generated_section_is_as_rendered() -> None:
    """Hand edits inside the generated section would survive a value-equal check."""
    text = gen_erc20.TARGET.read_text()
    assert gen_erc20.render(erc20.ABI, erc20.BYTECODE) in text, REGENERATE
