"""The background pusher: runs pushes in order on its own loop, survives failures, drops when full."""

import asyncio
import logging
import threading

from eventbus.push import BackgroundPusher


def test_pushes_run_in_order_off_the_callers_thread():
    pusher = BackgroundPusher("test")
    seen, threads = [], set()
    for i in range(50):

        async def push(i=i):
            await asyncio.sleep(0.001 if i % 2 else 0)  # a slow one never lets a later one overtake it
            seen.append(i)
            threads.add(threading.current_thread().name)

        assert pusher.submit(push)
    assert pusher.wait_idle()
    assert seen == list(range(50))
    assert threads == {"test-push"}


def test_a_failing_push_is_logged_and_the_next_one_runs(caplog):
    pusher = BackgroundPusher("test-fail")
    done = []

    async def broken():
        raise ConnectionError("redis away")

    async def fine():
        done.append(True)

    with caplog.at_level(logging.WARNING, logger="eventbus.push"):
        pusher.submit(broken)
        pusher.submit(fine)
        assert pusher.wait_idle()
    assert done == [True]
    assert "test-fail: a push to the channel layer failed: ConnectionError('redis away')" in caplog.text


def test_a_full_pusher_drops_instead_of_blocking():
    pusher = BackgroundPusher("test-full", max_pending=1)
    gate = threading.Event()

    async def stuck():
        await asyncio.get_running_loop().run_in_executor(None, gate.wait, 10)

    assert pusher.submit(stuck)
    assert pusher.submit(stuck) is False and pusher.dropped == 1
    gate.set()
    assert pusher.wait_idle()
