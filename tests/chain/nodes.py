"""Dev chains for the chain tests, behind one harness interface so a test is written once
and runs on both: eth-tester in process (``TesterHarness``) and a real JSON-RPC node,
ganache, in a child process (``GanacheHarness`` over ``Ganache``).

ganache comes from npm, pinned, installed once into a cache folder
(``EXCENTRA_GANACHE_DIR``, default ``~/.cache/excentra/ganache-<version>``). Without node or
npm the ganache cases skip, except under CI (``CI`` set), where they fail: CI must run them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Any, Protocol

import httpx
import pytest
from eth_typing import ChecksumAddress, HexStr
from web3 import HTTPProvider, Web3
from web3.types import RPCEndpoint

from excentra.chain.devchain import BatchingChain, DevChain, Sender

GANACHE_VERSION = "7.9.2"
GANACHE_DIR_ENV = "EXCENTRA_GANACHE_DIR"
ANVIL_VERSION = "1.7.1"
CHAIN_ID = 1337
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


def _require_tools() -> tuple[str, str]:
    """node and npm, or skip (fail under CI) when either is missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node and npm:
        return node, npm
    missing = " and ".join(name for name, path in (("node", node), ("npm", npm)) if not path)
    if os.environ.get("CI"):
        pytest.fail(f"{missing} not found under CI: the ganache tests must run there")
    pytest.skip(f"the ganache tests need {missing} (Node.js 18+) on PATH")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NpmNode:
    """A development Ethereum node from an npm package (pinned), installed once into a
    cache folder and started on a free loopback port."""

    PACKAGE = ""
    VERSION = ""
    DIR_ENV = ""
    NAME = ""

    def __init__(self, install_dir: Path | None = None) -> None:
        default = Path.home() / ".cache" / "excentra" / f"{self.NAME}-{self.VERSION}"
        self.install_dir = install_dir or Path(os.environ.get(self.DIR_ENV) or default)
        self.url: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def cli(self) -> Path:
        raise NotImplementedError

    def command(self, node: str, port: int) -> list[str]:
        raise NotImplementedError

    def install(self, npm: str) -> None:
        """npm-install the pinned ganache unless it is there. Two pytest processes may race:
        a file lock serializes them, and the install goes to a temporary folder renamed into
        place only when complete, so an interrupted install never looks finished."""
        if self.cli.is_file():
            return
        parent = self.install_dir.parent
        parent.mkdir(parents=True, exist_ok=True)
        with (parent / f".{self.install_dir.name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.cli.is_file():
                return
            staging = Path(tempfile.mkdtemp(prefix=f".{self.install_dir.name}-", dir=parent))
            try:
                done = subprocess.run(
                    [npm, "install", "--no-audit", "--no-fund", "--prefix", str(staging),
                     f"{self.PACKAGE}@{self.VERSION}"],
                    capture_output=True, text=True, timeout=300, check=False,
                )
                if done.returncode != 0:
                    pytest.fail(f"npm install {self.PACKAGE}@{self.VERSION} failed:\n"
                                f"{done.stdout}\n{done.stderr}")
                shutil.rmtree(self.install_dir, ignore_errors=True)  # a broken leftover
                staging.rename(self.install_dir)
            finally:
                shutil.rmtree(staging, ignore_errors=True)

    def start(self) -> str:
        """Install if needed, start the node and return its URL once it answers."""
        node, npm = _require_tools()
        self.install(npm)
        port = _free_port()
        # A file, not a pipe (a full pipe would block ganache); it lives as long as the node
        # and stop() closes it.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115
        self._proc = subprocess.Popen(
            self.command(node, port), stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}"
        try:
            self._wait_ready(self.url)
        except BaseException:
            self.stop()
            raise
        return self.url

    def _wait_ready(self, url: str) -> None:
        assert self._proc is not None
        body = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                pytest.fail(f"{self.NAME} exited with {self._proc.returncode} before "
                            f"answering:\n"
                            f"{self.output()}")
            try:
                if "result" in httpx.post(url, json=body, timeout=1.0).json():
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.1)
        pytest.fail(f"{self.NAME} did not answer eth_blockNumber at {url} within "
                    f"{START_TIMEOUT:.0f} s:\n{self.output()}")

    def output(self) -> str:
        """What ganache printed so far (for error messages)."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self) -> None:
        """Terminate the node (kill it if it does not exit in time)."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


class Ganache(NpmNode):
    """One ganache node on a free loopback port: deterministic funded accounts (the same
    mnemonic every run), chain id 1337, instamine (each transaction in its own block)."""

    PACKAGE, VERSION, DIR_ENV, NAME = "ganache", GANACHE_VERSION, GANACHE_DIR_ENV, "ganache"

    @property
    def cli(self) -> Path:
        """ganache's entry script (run with node)."""
        return self.install_dir / "node_modules" / "ganache" / "dist" / "node" / "cli.js"

    def command(self, node: str, port: int) -> list[str]:
        return [node, str(self.cli), "--server.host", "127.0.0.1", "--port", str(port),
                "--chain.chainId", str(CHAIN_ID), "--wallet.deterministic",
                "--miner.instamine", "eager", "--logging.quiet"]


class Anvil(NpmNode):
    """Foundry's anvil (a native binary shipped in an npm package): used where ganache
    does not behave as Ethereum does — its pool keeps two transactions of one sender with
    one nonce and mines both, so replacing a stuck transaction cannot be tested on it."""

    PACKAGE, VERSION, DIR_ENV, NAME = ("@foundry-rs/anvil-linux-amd64", ANVIL_VERSION,
                                       "EXCENTRA_ANVIL_DIR", "anvil")

    @property
    def cli(self) -> Path:
        return self.install_dir / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / (
            "bin") / "anvil"

    def command(self, node: str, port: int) -> list[str]:
        return [str(self.cli), "--host", "127.0.0.1", "--port", str(port), "--silent"]


class ChainHarness(Protocol):
    """What a chain test may use, whichever chain runs it."""

    w3: Web3
    url: str | None
    funder: ChecksumAddress

    def send_eth(self, to: str, wei: int, sender: Sender = None) -> HexStr: ...
    def deploy_token(
        self, name: str, symbol: str, decimals: int, supply_units: int
    ) -> ChecksumAddress: ...
    def send_token(
        self, token: str, to: str, units: int, sender: Sender = None, gas: int | None = None
    ) -> HexStr: ...
    def token_balance(self, token: str, owner: str) -> int: ...
    def mine(self, n: int = 1) -> None: ...
    def head(self) -> int: ...
    def snapshot(self) -> object: ...
    def revert(self, snap: object) -> None: ...
    def one_block(self) -> contextlib.AbstractContextManager[None]: ...


class TesterHarness(DevChain):
    """The in-process chain as a harness: DevChain already is one (``url`` is None)."""


class GanacheHarness(BatchingChain):
    """A harness over a running ganache node's JSON-RPC."""

    def __init__(self, url: str) -> None:
        self.url: str | None = url
        self.w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": 10}))
        self.funder = self.w3.eth.accounts[0]

    def _rpc(self, method: str, params: list[Any]) -> Any:
        response = self.w3.provider.make_request(RPCEndpoint(method), params)
        if "error" in response:
            raise RuntimeError(f"{method} failed: {response['error']}")
        return response["result"]

    def mine(self, n: int = 1) -> None:
        """Mine ``n`` empty blocks."""
        self._rpc("evm_mine", [{"blocks": n}])

    def stop_mining(self) -> None:
        """Transactions wait in the pool until ``start_mining`` (or ``mine``)."""
        self._rpc("miner_stop", [])

    def start_mining(self) -> None:
        self._rpc("miner_start", [])

    def _stop_mining(self) -> None:
        self._rpc("miner_stop", [])

    def _mine_pending(self) -> None:
        self._rpc("evm_mine", [])  # one block with everything pending
        self._rpc("miner_start", [])

    def snapshot(self) -> object:
        """ganache's snapshot id (hex); ``revert`` consumes it and every later one."""
        return self._rpc("evm_snapshot", [])

    def revert(self, snap: object) -> None:
        """Go back to ``snap``, then set the clock past the abandoned head's timestamp.

        ganache's blocks carry no randomness, so blocks re-mined in the same second would
        hash exactly as the abandoned ones; a later timestamp makes the new branch differ.
        The clock never goes back (the abandoned head is not older than the snapshot's).
        """
        abandoned_ts = int(self.w3.eth.get_block("latest")["timestamp"])
        if self._rpc("evm_revert", [snap]) is not True:
            raise RuntimeError(f"evm_revert refused snapshot {snap!r}")
        self._rpc("evm_setTime", [max(abandoned_ts + 1, int(time.time())) * 1000])


class AnvilHarness(GanacheHarness):
    """A harness over anvil: the same JSON-RPC, but its own way to hold mining back."""

    def mine(self, n: int = 1) -> None:
        self._rpc("anvil_mine", [n])

    def stop_mining(self) -> None:
        self._rpc("evm_setAutomine", [False])

    def start_mining(self) -> None:
        self._rpc("evm_setAutomine", [True])

    def _stop_mining(self) -> None:
        self.stop_mining()

    def _mine_pending(self) -> None:
        self._rpc("evm_mine", [])
        self.start_mining()

    def revert(self, snap: object) -> None:
        if self._rpc("evm_revert", [snap]) is not True:
            raise RuntimeError(f"evm_revert refused snapshot {snap!r}")
