"""The ``Exchange`` facade: the actor core as plain async Python (what HTTP calls).

Every method sends one command as a message and awaits its answer through the asyncio
bridge; none blocks the event loop. Answers are values: a result ``dict`` (decimals as
strings, the API's shapes) or ``Rejected(code)`` — including ``RejectCode.UNAVAILABLE``
while the core recovers from a failure.

Idempotency: every state-changing command has a command id — derived from the caller's
key (``client_order_id``, a deposit's idempotency key) or fresh. A command id that is in
flight is awaited, not re-sent; one already committed answers with its stored result.

Answers tell the truth: ``UNAVAILABLE`` means the command did not and will not happen
(retry freely); ``OUTCOME_UNKNOWN`` (no answer within ``reply_timeout``) means it may
still commit (retry with the same key to learn its outcome).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import sys
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pykka

from excentra.actors.book import Snapshot
from excentra.actors.bridge import Fence, Outstanding, Rejected, Reply, Unavailable
from excentra.actors.broadcaster import Subscriber
from excentra.actors.custody import ReviewWithdrawal
from excentra.actors.journal import JournalStats, Stats
from excentra.actors.ledger import (
    AddAsset,
    AddPair,
    Audit,
    CancelOrder,
    Deposit,
    PlaceOrder,
    SetPairActive,
    SetSuspended,
    SettleWithdrawal,
    Withdraw,
)
from excentra.actors.supervised import Many
from excentra.actors.supervisor import Chain, Supervisor
from excentra.actors.watermarks import NOTHING, READ_WAIT, READER, Watermarks
from excentra.chain.settings import ETH
from excentra.chain.store import deposit_address
from excentra.chain.wallet import parse_address
from excentra.chain.watcher import ChainStatus, Poll, Sync, amount_to_units
from excentra.db import Database, ProjectionBehind, migrate
from excentra.db.lookups import Coalescer
from excentra.db.records import AssetRow, PairRow
from excentra.db.state import command_results
from excentra.engine import (
    GridError,
    OrderBook,
    OrderType,
    RejectCode,
    Side,
    StpMode,
    TimeInForce,
)
from excentra.engine.precision import PairSpec, plain
from excentra.keys import UsedKeys
from excentra.ledger.clearing import NewOrder
from excentra.registry import Registry, pair_terms

log = logging.getLogger("excentra.exchange")

Result = dict[str, Any]
Outcome = Result | Rejected

SWITCH_INTERVAL: float | None = None
"""The GIL switch interval to run the core with; ``None`` keeps CPython's (0.005 s).

Every command crosses five threads (loop, ledger, book, ledger, journal), and a thread with
work waits for the GIL up to the switch interval while another computes. A plain-placement
load ran ~20 % faster at 0.0005 s, but the ``excentra bench pipeline`` mix (keyed orders
and cancels) did not (882/848 vs 896/912 commands/s on PostgreSQL/SQLite, one run each),
so the default is left alone; the knob stays for deployments to measure."""


MAX_PENDING_COMMANDS = 4000
"""Default of ``Exchange.max_pending``: about two seconds of the durable pipeline's measured
throughput (~2,000 commands/s on the 2-core machine, bench/RESULTS.md), so a command
admitted is answered within a few seconds even when clients push above capacity, and one
beyond gets an immediate 503 instead of a timeout (``MAX_PENDING_COMMANDS`` in the
server's environment)."""


RECOVERY_WAIT = 2.0
"""Default of ``Exchange.recovery_wait``: seconds a command waits for a whole-core rebuild
to finish — one arriving meanwhile, or one the rebuild answered "did not happen" — before
it is sent (again). A rebuild takes a fraction of a second (a command the database refused,
an actor that died of a bug), so their callers see a delay, not a 503; a rebuild that
waits for the database to come back takes longer, and they get the 503 after this wait."""


class Exchange:
    """Start it, call it, stop it. One per process and event loop."""

    def __init__(self, database_url: str | None = None, *,
                 subscribers: Iterable[Subscriber] = (), max_batch: int = 2000,
                 reply_timeout: float = 30.0,
                 switch_interval: float | None = SWITCH_INTERVAL,
                 chains: Iterable[Chain] = (),
                 max_pending: int = MAX_PENDING_COMMANDS,
                 recovery_wait: float = RECOVERY_WAIT,
                 read_wait: float = READ_WAIT,
                 projector_paused: bool = False, projector: str = "thread") -> None:
        self.db = Database(database_url)
        self.watermarks = Watermarks()
        """How far the event log and the tables (its projection) are (read-your-writes)."""
        self.read_wait = read_wait
        """Seconds a read of the tables may wait for the projection (then 503)."""
        self._projector_paused = projector_paused
        self._projector = projector
        """Where the tables are projected: ``"thread"`` (in this process) or
        ``"process"`` (a child process, off this process's GIL; ``excentra serve``)."""
        self.recovery_wait = recovery_wait
        """See ``RECOVERY_WAIT``; 0: answer 503 at once (the raw protocol, for tests)."""
        self.max_pending = max_pending
        """Commands that may wait for an answer at once; past it, new ones are shed."""
        self.shed = 0
        """Commands refused at once because ``max_pending`` were waiting (since start)."""
        self.chains = {c.settings.name: c for c in chains}
        """The chains deposits and withdrawals run on (``excentra.chain``)."""
        self.chain_status: dict[str, ChainStatus] = {}
        """Each chain watcher's last report (``/health``, ``/metrics``)."""
        self.deposit_listeners: list[Callable[[str, dict[str, Any]], None]] = []
        """Called on the loop with ``(user id, deposit)`` for what a chain watcher sees
        before anything is journaled (a deposit pending, its confirmations, its block
        gone): the WebSocket hub tells the user."""
        self.reply_timeout = reply_timeout
        self.switch_interval = switch_interval
        self._subscribers = list(subscribers)
        self._max_batch = max_batch
        self._inflight: dict[str, asyncio.Future[Outcome]] = {}
        """Commands on their way, by command id."""
        self.outstanding = Outstanding()
        self.registry = Registry()
        """Assets and pairs (see ``excentra.registry``)."""
        self.fence = Fence()
        """Views on this loop that must show a command before its caller resumes (the
        WebSocket hub) attach here and advance it (read-your-writes)."""
        self.supervisor: Supervisor | None = None
        self._sender = _Sender()
        self._results: Coalescer[str, str] = Coalescer(self._stored_results)
        self._keys = UsedKeys(self.db)
        self.db.before_query = self._fence

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Database, migrations, then the actors (in dependency order)."""
        if self.switch_interval is not None:
            sys.setswitchinterval(self.switch_interval)
        await self.db.connect()
        await migrate(self.db)
        await self.registry.load(self.db)
        self._listed_chain_assets()
        loop = asyncio.get_running_loop()

        def report(status: ChainStatus) -> None:  # in the watcher's thread
            loop.call_soon_threadsafe(self.chain_status.__setitem__, status.chain, status)

        def observed(user_id: str, deposit: dict[str, Any]) -> None:  # the watcher's thread
            loop.call_soon_threadsafe(self._deposit_observed, user_id, deposit)

        chains = [dataclasses.replace(c, on_status=report, on_deposit=observed)
                  for c in self.chains.values()]
        self.watermarks.bind(loop)
        self.supervisor = Supervisor(self.db.url, loop, self.outstanding, self._subscribers,
                                     self._max_batch, chains=chains,
                                     watermarks=self.watermarks,
                                     projector_paused=self._projector_paused,
                                     projector=self._projector)
        await self.supervisor.start()

    async def stop(self) -> None:
        if self.supervisor is not None:
            await self.supervisor.stop()
        await self.db.disconnect()

    async def __aenter__(self) -> Exchange:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    @property
    def _sv(self) -> Supervisor:
        if self.supervisor is None:
            raise RuntimeError("Exchange is not started")
        return self.supervisor

    # -- commands ------------------------------------------------------------------------

    async def place_order(
        self, user_id: str, symbol: str, side: Side, order_type: OrderType, *,
        price: Decimal | None = None, quantity: Decimal | None = None,
        budget: Decimal | None = None, time_in_force: TimeInForce = TimeInForce.GTC,
        post_only: bool = False, stp: StpMode = StpMode.EXPIRE_TAKER,
        client_order_id: str | None = None,
    ) -> Outcome:
        """Place an order. Limit: ``price`` and base ``quantity``. Market sell: base
        ``quantity``. Market buy: quote ``budget`` (the original API's semantics)."""
        order = NewOrder(str(uuid.uuid4()), str(user_id), symbol, side, order_type, price,
                         quantity, budget, time_in_force, post_only, stp, client_order_id)
        command_id = (f"order:{user_id}:{client_order_id}" if client_order_id
                      else f"order:{order.order_id}")
        return await self._command(command_id, lambda r: PlaceOrder(command_id, order, r),
                                   keyed=client_order_id is not None)

    async def cancel_order(self, user_id: str, order_id: str) -> Outcome:
        """Cancel the user's open order. ``ORDER_NOT_FOUND``: the user has no open order
        by that id (the ledger knows every open order; it may have just been filled)."""
        if _uuid(order_id) is None:
            return Rejected(RejectCode.ORDER_NOT_FOUND)
        # A fresh id per attempt: a second cancel of an order is "not open", never a replay.
        command_id = f"cancel:{order_id}:{uuid.uuid4()}"
        return await self._command(command_id, lambda r: CancelOrder(
            command_id, str(order_id), str(user_id), r), keyed=False)

    def set_suspended(self, user_id: str, suspended: bool) -> None:
        """Tell the core a user's suspension changed (stored already: a rebuild reads it).
        A suspended user may cancel, not place orders or withdraw."""
        self._tell_ledger(SetSuspended(str(user_id), suspended))

    def set_pair_active(self, symbol: str, active: bool) -> None:
        """Tell the core an admin halted or reopened a pair (stored already: a rebuild
        reads it). A halted pair takes no new orders; its resting orders may be
        cancelled."""
        self.registry.set_active(symbol, active)
        self._tell_ledger(SetPairActive(symbol, active))

    def _tell_ledger(self, change: Any) -> None:
        """An admin's change, already stored: a dead ledger is rebuilt from the database,
        which has it, so a failed tell loses nothing."""
        actors = self._sv.actors
        if actors is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                actors.ledger.tell(change)

    async def deposit(self, user_id: str, asset: str, amount: Decimal,
                      idempotency_key: str | None = None) -> Outcome:
        command_id = f"deposit:{user_id}:{idempotency_key or uuid.uuid4()}"
        return await self._command(command_id, lambda r: Deposit(
            command_id, str(user_id), asset, amount, r), keyed=idempotency_key is not None)

    async def withdraw(self, user_id: str, asset: str, amount: Decimal, to_address: str,
                       idempotency_key: str | None = None, *,
                       immediate: bool = False) -> Outcome:
        """Hold ``amount`` for a withdrawal (pending until the chain side sends it), or
        with ``immediate`` take it off the balance at once (an off-chain withdrawal)."""
        command_id = f"withdraw:{user_id}:{idempotency_key or uuid.uuid4()}"
        return await self._command(command_id, lambda r: Withdraw(
            command_id, str(uuid.uuid4()), str(user_id), asset, amount, to_address, r,
            immediate), keyed=idempotency_key is not None)

    def _listed_chain_assets(self) -> None:
        """Leave out of each chain the assets the registry does not list: logged as an
        error, not a failed start (trading goes on; the ``/deposits`` routes refuse such an
        asset, so nobody is given an address for it). ETH missing: no chain at all. An
        admin adds the asset (``POST /api/v1/assets``) and restarts to enable it; what is
        sent to an address for it meanwhile is not watched, and stays at the address,
        recoverable with the wallet's mnemonic."""
        listed = self.registry.decimals()
        for name, chain in list(self.chains.items()):
            missing = [a for a in chain.settings.assets if a not in listed]
            if not missing:
                continue
            log.error("chain assets not in the asset registry are left without a chain: "
                      "an admin must add them (POST /api/v1/assets), then restart",
                      extra={"chain": name, "assets": missing})
            if ETH in missing:
                del self.chains[name]
            else:
                self.chains[name] = dataclasses.replace(
                    chain, settings=chain.settings.without(set(missing)))

    def _deposit_observed(self, user_id: str, deposit: dict[str, Any]) -> None:
        for listener in self.deposit_listeners:
            try:
                listener(user_id, deposit)
            except Exception:  # a listener's bug must not stop the others
                log.exception("deposit listener failed")

    def chain_of(self, asset: str) -> Chain | None:
        """The chain ``asset`` is deposited and withdrawn on (``None``: simulated only)."""
        return next((c for c in self.chains.values() if asset in c.settings.assets), None)

    async def chain_withdraw(self, user_id: str, asset: str, amount: Decimal,
                             to_address: str, idempotency_key: str | None = None) -> Outcome:
        """An on-chain withdrawal: ``amount`` + the asset's network fee held at once; the
        chain watcher sends it (after an admin's approval above the asset's limit).
        ``to_address``: hex, EIP-55 checksummed if mixed-case (stored checksummed).
        Refused below the asset's minimum."""
        chain = self.chain_of(asset)
        if chain is None:
            return Rejected(RejectCode.ASSET_NOT_FOUND)
        s = chain.settings
        try:
            to_address = parse_address(to_address)
        except ValueError:
            return Rejected(RejectCode.INVALID_ADDRESS)
        if amount < s.withdrawal_min[asset]:
            return Rejected(RejectCode.BELOW_MINIMUM)
        try:
            amount_to_units(amount, s.chain_decimals(asset))
        except ValueError:
            return Rejected(RejectCode.AMOUNT_OFF_GRID)  # finer than the chain can pay
        limit = s.approval_above.get(asset)
        needs_approval = limit is not None and amount > limit
        command_id = f"withdraw:{user_id}:{idempotency_key or uuid.uuid4()}"
        return await self._command(command_id, lambda r: Withdraw(
            command_id, str(uuid.uuid4()), str(user_id), asset, amount, to_address, r,
            fee=s.withdrawal_fee[asset], chain=s.name, needs_approval=needs_approval),
            keyed=idempotency_key is not None)

    async def deposit_address(self, user_id: str, asset: str) -> str | None:
        """The user's deposit address for ``asset`` (one per chain, made on first ask);
        ``None`` if the asset has no chain."""
        chain = self.chain_of(asset)
        if chain is None:
            return None
        address = await deposit_address(self.db, str(user_id), chain.settings.name,
                                        chain.wallet.address)
        return parse_address(address)

    async def chain_sync(self, name: str, *, poll: bool = True) -> None:
        """Tests and the demo: have chain ``name``'s watcher poll now (``poll``), and
        wait until what the poll set off (credits, sends, settlements) is answered."""
        ref = self._sv.actors.named(f"chain:{name}") if self._sv.actors else None
        if ref is None:
            raise RuntimeError(f"no watcher for chain {name!r}")
        if poll:
            ref.tell(Poll())
        while True:
            reply = Reply(asyncio.get_running_loop())
            ref.tell(Sync(reply))
            if not await reply.wait(self.reply_timeout):
                return
            await asyncio.sleep(0.01)

    async def review_withdrawal(self, withdrawal_id: str, approve: bool,
                                reason: str | None = None) -> Outcome:
        """An admin's decision on a withdrawal awaiting approval."""
        if _uuid(withdrawal_id) is None:
            return Rejected(RejectCode.WITHDRAWAL_NOT_FOUND)
        # fresh per attempt: a second decision is WITHDRAWAL_WRONG_STATE, never a replay
        command_id = f"review:{withdrawal_id}:{uuid.uuid4()}"
        return await self._command(command_id, lambda r: ReviewWithdrawal(
            command_id, str(withdrawal_id), approve, reason, r), keyed=False)

    async def settle_withdrawal(self, withdrawal_id: str, *, sent: bool,
                                tx_hash: str | None = None) -> Outcome:
        """Close a pending withdrawal: ``sent`` (the funds left; ``held`` goes down and the
        external total with it) or not (the funds go back to ``available``)."""
        command_id = f"withdrawal:{withdrawal_id}"
        return await self._command(command_id, lambda r: SettleWithdrawal(
            command_id, str(withdrawal_id), sent, tx_hash, r))

    async def add_asset(self, symbol: str, name: str, decimals: int,
                        coingecko_id: str | None = None) -> Outcome:
        if not (0 <= decimals <= 18) or not symbol.isalnum() or len(symbol) > 10:
            return Rejected(RejectCode.INVALID_NUMBER)
        row = AssetRow(uuid.uuid4(), symbol, name, decimals, coingecko_id, datetime.now(UTC))
        # A fresh id per call: adding an asset that exists is ALREADY_EXISTS (the ledger
        # knows its assets), never a replay of the first add's answer.
        command_id = f"asset:{symbol}:{row.id}"
        outcome = await self._command(command_id, lambda r: AddAsset(command_id, row, r),
                                      keyed=False)
        if not isinstance(outcome, Rejected):
            self.registry.asset_added(symbol, decimals)
        return outcome

    async def add_pair(self, base: str, quote: str, *, price_step: Decimal | None = None,
                       quantity_step: Decimal | None = None,
                       maker_fee_rate: Decimal = Decimal(0),
                       taker_fee_rate: Decimal = Decimal(0)) -> Outcome:
        """Add a trading pair at runtime: its book actor starts now, no restart needed."""
        decimals = self.registry.decimals()
        if base not in decimals or quote not in decimals or base == quote:
            return Rejected(RejectCode.ASSET_NOT_FOUND)
        row = PairRow(uuid.uuid4(), base, quote, f"{base}/{quote}", price_step,
                      quantity_step, maker_fee_rate, taker_fee_rate, datetime.now(UTC))
        try:
            terms = pair_terms(row.symbol, base, quote, price_step, quantity_step,
                               maker_fee_rate, taker_fee_rate, decimals)
        except GridError:
            return Rejected(RejectCode.PRICE_OFF_TICK)
        command_id = f"pair:{row.symbol}:{row.id}"  # fresh: a second add is ALREADY_EXISTS
        actors = self._sv.actors
        if actors is not None and row.symbol in actors.books:
            return Rejected(RejectCode.ALREADY_EXISTS)
        try:
            book = await self._sv.start_book(row.symbol, OrderBook(terms.spec))
        except Exception:
            log.exception("a new pair's book did not start", extra={"pair": row.symbol})
            return Rejected(RejectCode.UNAVAILABLE)
        outcome = await self._command(
            command_id, lambda reply: AddPair(command_id, row, terms, book, reply),
            keyed=False)
        if isinstance(outcome, Rejected):
            await asyncio.to_thread(lambda: book.stop(block=True) if book.is_alive() else None)
        else:
            self._sv.register_book(row.symbol, book)
            self.registry.pair_added(row.id, terms)
        return outcome

    # -- queries -------------------------------------------------------------------------

    async def snapshot(self, symbol: str, depth: int = 20) -> Result | Rejected:
        """The book's top ``depth`` levels per side (decimal strings) and its ``seq``."""
        actors = self._sv.actors
        book = actors.books.get(symbol) if actors else None
        if book is None:
            return Rejected(RejectCode.PAIR_NOT_FOUND)
        outcome = await self._ask(f"book:{symbol}", lambda r: Snapshot(depth, r))
        if isinstance(outcome, Rejected):
            return outcome
        snap, state_hash, spec = outcome

        def levels(side: Any) -> list[dict[str, str]]:
            return [{"price": plain(spec.price(lv.price)),
                     "quantity": plain(spec.quantity(lv.quantity))} for lv in side]

        return {"symbol": symbol, "seq": snap.seq, "bids": levels(snap.bids),
                "asks": levels(snap.asks), "state_hash": state_hash}

    async def audit_ledger(self) -> Result | Rejected:
        """Run the in-memory ledger's invariant check; its balances in minor units."""
        outcome: Result | Rejected = await self._ask("ledger", Audit)
        return outcome

    async def journal_stats(self) -> JournalStats | Rejected:
        """Group-commit figures (batches, commands, mean batch size) since start."""
        outcome: JournalStats | Rejected = await self._ask("journal", Stats)
        return outcome

    async def projection_stats(self) -> JournalStats | Rejected:
        """The projector's figures (transactions, entries in them) since it started."""
        outcome: JournalStats | Rejected = await self._ask("projector", Stats)
        return outcome

    # -- reading the tables (read-your-writes) --------------------------------------------

    async def _fence(self) -> None:
        """Before a query of ``self.db``: wait until the tables (the log's projection)
        show what the current reader must see (``watermarks.READER``); ``ProjectionBehind``
        (503) if they do not within ``read_wait``."""
        wm = self.watermarks
        seq = wm.needed(READER.get())
        if seq > wm.projected and not await wm.reached(seq, self.read_wait):
            raise ProjectionBehind(f"the tables are at entry {wm.projected}, the reader "
                                   f"needs {seq}")

    async def _stored_results(self, command_ids: list[str]) -> list[tuple[str, str]]:
        """Idempotency: the answers of those command ids already in the log (the log is
        read, not a projection: no wait)."""
        token = READER.set(NOTHING)
        try:
            return await command_results(self.db, command_ids)
        finally:
            READER.reset(token)

    def pair_spec(self, symbol: str) -> PairSpec | None:
        """The pair's grid (``None`` for an unknown pair)."""
        return self.registry.spec(symbol)

    def mailbox_depths(self) -> dict[str, int]:
        """Messages waiting in each actor's inbox (a gauge for ``/metrics``)."""
        actors = self.supervisor.actors if self.supervisor else None
        if actors is None:
            return {}
        refs = {"broadcaster": actors.broadcaster, "journal": actors.journal,
                "ledger": actors.ledger, **{f"book:{s}": b for s, b in actors.books.items()},
                **({"projector": actors.projector} if actors.projector is not None else {})}
        # pykka's threading inbox is a queue.Queue; the ActorInbox protocol does not name qsize
        return {name: int(getattr(ref.actor_inbox, "qsize", lambda: 0)())
                for name, ref in refs.items()}

    def pending_commands(self) -> int:
        """Commands waiting for their answer now (shed beyond ``max_pending``)."""
        return len(self._inflight)

    def core_status(self) -> dict[str, Any]:
        """Whether the whole core is being rebuilt, and which pairs' books are."""
        sv = self.supervisor
        if sv is None:
            return {"recovering": True, "books_down": []}
        return {"recovering": sv.recovering, "books_down": sorted(sv.books_down)}

    def recoveries(self) -> dict[str, int]:
        """Rebuilds since start: ``book`` (one pair's book alone), ``core`` (everything)."""
        sv = self.supervisor
        return {} if sv is None else {"book": sv.book_recoveries, "core": sv.recoveries}

    # -- plumbing ------------------------------------------------------------------------

    def _send_soon(self, target: pykka.ActorRef[Any], message: Any, reply: Reply) -> None:
        self._sender.add(target, message, reply)

    async def _command(self, command_id: str, message: Callable[[Reply], Any],
                       keyed: bool = True) -> Outcome:
        """Run a command once; a caller asking for the same id meanwhile shares its
        answer. A caller that waits ``reply_timeout`` in vain gets ``OUTCOME_UNKNOWN``,
        but the command goes on, and a retry meanwhile still shares its true answer."""
        running = self._inflight.get(command_id)
        if running is None:
            if len(self._inflight) >= self.max_pending:
                # Load shedding: this many already wait, so a new one would wait past any
                # useful bound. Refused before it is sent, so it did not and will not
                # happen (503, retry later); a repeat of a waiting one still joins it.
                self.shed += 1
                return Rejected(RejectCode.UNAVAILABLE)
            running = asyncio.ensure_future(self._execute(command_id, message, keyed))
            self._inflight[command_id] = running
            running.add_done_callback(lambda _: self._inflight.pop(command_id, None))
        # asyncio.wait, not wait_for: a caller that stops waiting must not cancel the
        # command (a retry still shares its true answer), and it costs no shield.
        done, _ = await asyncio.wait((running,), timeout=self.reply_timeout)
        if not done:
            log.warning("command outcome not known yet", extra={"command_id": command_id})
            return Rejected(RejectCode.OUTCOME_UNKNOWN)
        return running.result()

    async def _execute(self, command_id: str, message: Callable[[Reply], Any],
                       keyed: bool) -> Outcome:
        # A caller's key may have been used before (a fresh uuid cannot have been): memory
        # knows each user's keys (excentra.keys); the database answers a retry.
        if keyed and await self._keys.used(command_id) is not False:
            stored = await self._results.get(command_id)
            if stored is not None:
                result: Result = json.loads(stored)
                return result
        outcome: Outcome = await self._ask("ledger", message, command_id)
        if keyed and not isinstance(outcome, Rejected):
            self._keys.add(command_id)  # before anyone sees the answer
        return outcome

    async def _ask(self, name: str, message: Callable[[Reply], Any],
                   command_id: str | None = None, *, again: bool = True) -> Any:
        """Send ``message`` to the actor called ``name`` and await its answer; with a
        ``command_id`` it is a state-changing command (see ``bridge.Outstanding``).

        A command meets a whole-core rebuild either before it is sent (it waits for the
        rebuild) or in flight (the rebuild answers it "did not happen", so it is sent once
        more to the rebuilt core): either way nothing of it was done, so running it now is
        running it once."""
        waits = bool(command_id) and self.recovery_wait > 0
        if self._sv.recovering and not (waits and await self._sv.recovered(
                self.recovery_wait)):
            return Rejected(RejectCode.UNAVAILABLE)
        actors = self._sv.actors
        target = actors.named(name) if actors is not None else None
        if target is None:
            return Rejected(RejectCode.UNAVAILABLE)
        reply = Reply(asyncio.get_running_loop(), self.outstanding, command_id=command_id,
                      target=name)
        self._send_soon(target, message(reply), reply)
        try:  # a command is always answered (the supervisor sees to it): no deadline
            value = await reply.wait(None if command_id else self.reply_timeout)
        except Unavailable as exc:
            if waits and again and await self._sv.recovered(self.recovery_wait):
                log.info("command not executed by the failed core; sent again",
                         extra={"command_id": command_id, "error": str(exc)})
                return await self._ask(name, message, command_id, again=False)
            log.warning("command not executed", extra={"error": str(exc)})
            return Rejected(RejectCode.UNAVAILABLE)
        if reply.batch:
            await self.fence.reached(reply.batch)
        return value


class _Sender:
    """Messages from the loop to the actors, sent once per loop iteration: everything a
    pass of the loop addressed to one actor goes as one ``Many`` (one hand-over between
    threads per batch, not per command). A message for an actor found dead was never
    sent: its reply fails ``Unavailable`` (did not happen)."""

    def __init__(self) -> None:
        self.waiting: dict[str, tuple[pykka.ActorRef[Any], list[tuple[Any, Reply]]]] = {}
        self.scheduled = False

    def add(self, target: pykka.ActorRef[Any], message: Any, reply: Reply) -> None:
        entry = self.waiting.get(target.actor_urn)
        if entry is None:
            entry = self.waiting[target.actor_urn] = (target, [])
        entry[1].append((message, reply))
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self.send)

    def send(self) -> None:
        self.scheduled = False
        waiting, self.waiting = self.waiting, {}
        for target, items in waiting.values():
            messages = [m for m, _ in items]
            try:
                target.tell(messages[0] if len(messages) == 1 else Many(tuple(messages)))
            except pykka.ActorDeadError:
                for _, reply in items:
                    reply.set_exception(Unavailable("the actor was down; not sent"))


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
