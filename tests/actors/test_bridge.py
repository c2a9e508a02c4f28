"""The asyncio bridge: replies from actor threads reach coroutines without blocking the
loop (DESIGN.md invariant 2), and nothing waits forever."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from excentra.actors.bridge import Fence, Outstanding, Reply, Unavailable
from excentra.engine import RejectCode


def _later(seconds: float, action: object) -> threading.Thread:
    """Run ``action`` in a real, separate thread after ``seconds`` (an actor's stand-in)."""
    assert callable(action)

    def run() -> None:
        time.sleep(seconds)
        action()

    thread = threading.Thread(target=run, name="fake-actor")
    thread.start()
    return thread


async def _ticker(ticks: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        ticks.append(time.monotonic())
        await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_resolve_from_another_thread_wakes_the_waiter_without_blocking_the_loop() -> None:
    loop = asyncio.get_running_loop()
    reply = Reply(loop)
    resolved_in: list[str] = []

    def resolve() -> None:
        resolved_in.append(threading.current_thread().name)
        reply.resolve({"answer": 42})

    ticks: list[float] = []
    stop = asyncio.Event()
    ticker = asyncio.create_task(_ticker(ticks, stop))
    started = time.monotonic()
    thread = _later(0.3, resolve)
    try:
        value = await reply.wait(timeout=5)
    finally:
        stop.set()
        await ticker
        thread.join()
    assert value == {"answer": 42}
    assert resolved_in == ["fake-actor"]
    assert threading.current_thread() is threading.main_thread()
    # The loop ran the ticker all the while: many ticks spread over the wait, not a burst.
    during = [t for t in ticks if t < started + 0.3]
    assert len(during) >= 5, ticks
    assert time.monotonic() - started < 2


@pytest.mark.asyncio
async def test_fail_raises_in_the_awaiter() -> None:
    reply = Reply(asyncio.get_running_loop())
    thread = _later(0.05, lambda: reply.fail(Unavailable("book died")))
    try:
        with pytest.raises(Unavailable, match="book died") as caught:
            await reply.wait(timeout=5)
    finally:
        thread.join()
    assert caught.value.code is RejectCode.UNAVAILABLE


@pytest.mark.asyncio
async def test_fail_with_any_exception_type_reaches_the_awaiter() -> None:
    reply = Reply(asyncio.get_running_loop())
    thread = _later(0.01, lambda: reply.fail(ValueError("boom")))
    try:
        with pytest.raises(ValueError, match="boom"):
            await reply.wait(timeout=5)
    finally:
        thread.join()


@pytest.mark.asyncio
async def test_wait_times_out_as_unavailable_and_leaves_the_registry() -> None:
    registry = Outstanding()
    reply = Reply(asyncio.get_running_loop(), registry)
    assert len(registry) == 1
    started = time.monotonic()
    with pytest.raises(Unavailable):
        await reply.wait(timeout=0.1)
    assert 0.09 <= time.monotonic() - started < 2
    assert len(registry) == 0


@pytest.mark.asyncio
async def test_a_late_answer_after_a_timeout_is_ignored() -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        reply = Reply(loop)
        with pytest.raises(Unavailable):
            await reply.wait(timeout=0.05)
        _later(0, lambda: reply.resolve("too late")).join()
        reply.fail(RuntimeError("also too late"))
        await asyncio.sleep(0.05)  # let the thread's callback run on the loop
    finally:
        loop.set_exception_handler(None)
    assert errors == []
    with pytest.raises(Unavailable):
        await reply.wait(timeout=1)  # the first outcome stands


@pytest.mark.asyncio
async def test_resolved_reply_leaves_the_registry() -> None:
    registry = Outstanding()
    reply = Reply(asyncio.get_running_loop(), registry)
    thread = _later(0.01, lambda: reply.resolve("done"))
    assert await reply.wait(timeout=5) == "done"
    thread.join()
    assert len(registry) == 0


@pytest.mark.asyncio
async def test_fail_all_fails_every_pending_reply_and_empties_the_registry() -> None:
    loop = asyncio.get_running_loop()
    registry = Outstanding()
    replies = [Reply(loop, registry) for _ in range(5)]
    answered = Reply(loop, registry)
    answered.set_result("early")
    waiters = [asyncio.create_task(r.wait(timeout=30)) for r in replies]
    await asyncio.sleep(0)  # every waiter is now awaiting
    assert len(registry) == 5

    assert registry.fail_all("ledger died") == 5

    assert len(registry) == 0
    outcomes = await asyncio.wait_for(
        asyncio.gather(*waiters, return_exceptions=True), timeout=5)
    assert all(isinstance(o, Unavailable) and "ledger died" in str(o) for o in outcomes)
    assert await answered.wait(timeout=1) == "early"
    assert registry.fail_all("again") == 0


@pytest.mark.asyncio
async def test_fail_all_from_the_loop_while_threads_are_resolving() -> None:
    """A resolve racing with ``fail_all``: each waiter gets exactly one outcome."""
    loop = asyncio.get_running_loop()
    registry = Outstanding()
    replies = [Reply(loop, registry) for _ in range(50)]
    waiters = [asyncio.create_task(r.wait(timeout=30)) for r in replies]
    threads = [_later(0.001 * (i % 5), lambda r=r: r.resolve("ok"))
               for i, r in enumerate(replies[:25])]
    await asyncio.sleep(0.002)
    registry.fail_all("shutdown")
    for t in threads:
        t.join()
    outcomes = await asyncio.wait_for(
        asyncio.gather(*waiters, return_exceptions=True), timeout=5)
    assert all(o == "ok" or isinstance(o, Unavailable) for o in outcomes)
    assert all(isinstance(o, Unavailable) for o in outcomes[25:])
    assert len(registry) == 0


# -- Fence: read-your-writes for views on the loop -------------------------------------------


@pytest.mark.asyncio
async def test_a_fence_without_views_never_waits() -> None:
    fence = Fence(limit=5)
    await asyncio.wait_for(fence.reached(10), 0.1)


@pytest.mark.asyncio
async def test_a_fence_waits_until_its_view_has_applied_the_batch() -> None:
    fence = Fence(limit=5)
    fence.attach()
    waiter = asyncio.ensure_future(fence.reached(3))
    fence.advance(2)
    await asyncio.sleep(0.01)
    assert not waiter.done()  # batch 3 is not applied yet
    fence.advance(3)
    await asyncio.wait_for(waiter, 0.1)
    await asyncio.wait_for(fence.reached(1), 0.1)  # an older batch: at once


@pytest.mark.asyncio
async def test_a_fence_waits_no_longer_than_its_limit() -> None:
    """A view that lost a batch (e.g. to a broadcaster restart) must not stall answers."""
    fence = Fence(limit=0.05)
    fence.attach()
    started = time.monotonic()
    await fence.reached(7)
    assert 0.04 <= time.monotonic() - started < 1


@pytest.mark.asyncio
async def test_a_detached_view_releases_whoever_waits_for_it() -> None:
    fence = Fence(limit=5)
    fence.attach()
    waiter = asyncio.ensure_future(fence.reached(9))
    await asyncio.sleep(0.01)
    fence.detach()
    await asyncio.wait_for(waiter, 0.1)
    await asyncio.wait_for(fence.reached(99), 0.1)


def test_batch_numbers_only_grow() -> None:
    first = Fence.next_batch()
    assert Fence.next_batch() == first + 1
