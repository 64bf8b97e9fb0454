"""Django's ASGI handler, with fewer crossings between the event loop and a request's thread.

Django's own handler costs more per request than `/healthz` itself, for two reasons this handler removes:

- It loads the middleware chain in async mode. Ours is sync where it matters (WhiteNoise's middleware is
  sync-only, our views are sync), so a request crossed again and again: into the thread for the sync
  middleware, back to the loop below them, into the thread for each `process_view` (Django adapts each one
  on its own), for the view, and for `process_request` and `process_response` of every middleware left in
  async mode. Each crossing is a future, a wake-up of the loop and a hand-off of the GIL. Here the chain is
  loaded in sync mode, as Django's WSGI handler loads it, and runs with the view in one `sync_to_async` call.
- It starts a thread for every request (a one-thread executor per `ThreadSensitiveContext`) and a second
  one to join it afterwards. Here a request borrows a one-thread executor that stays for the next request.

Everything else is Django's: reading the body, the `request_started` signal, watching for a disconnect,
sending the response and closing it. A request's sync code still runs in one thread of its own for the
whole request, so Django's per-thread database connections stay the request's. An async view would still
work (Django runs it with `async_to_sync` inside the chain).

Why not `django.core.asgi.get_asgi_application`: measured against it (`bench/web_ab.py`, daphne at 16
keep-alive connections, the variants alternating, four rounds), `/healthz` cost the web 1.38 CPU-ms per
request against 2.88 (ranges apart) and served 673 against 334 per second; `POST /api/orders` 4.53
against 7.51 CPU-ms. docs/performance.md has the tables.

Relies on Django 5.2.19's handler internals (it skips `ASGIHandler.__init__`, calls
`BaseHandler.load_middleware(is_async=False)` and overrides `ASGIHandler.get_response_async`) and on
asgiref 3.13.0's `ThreadSensitiveContext(executor=…)`. Both are pinned in requirements.lock and
pyproject.toml; tests/test_runtime_pins.py fails when other versions are installed.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler

WRITTEN_AGAINST = {"django": "5.2.19", "asgiref": "3.13.0"}
KEEP_THREADS = 16  # idle request threads kept; more requests at once get threads of their own


class _RequestThread(ThreadPoolExecutor):
    """One worker thread, and how many calls it has in hand: a request cancelled by a disconnect leaves its
    sync call running, and its thread must not be lent to the next request before that call ends."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="request")
        self._calls = 0
        self._calls_lock = threading.Lock()

    def submit(self, fn, /, *args, **kwargs):
        with self._calls_lock:
            self._calls += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._call_ended)
        return future

    def _call_ended(self, _future) -> None:
        with self._calls_lock:
            self._calls -= 1

    @property
    def idle(self) -> bool:
        with self._calls_lock:
            return self._calls == 0


class _RequestThreads:
    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.kept: list[_RequestThread] = []
        self.lock = threading.Lock()

    def lend(self) -> _RequestThread:
        with self.lock:
            if self.kept:
                return self.kept.pop()
        return _RequestThread()

    def give_back(self, thread: _RequestThread) -> None:
        if thread.idle:
            with self.lock:
                if len(self.kept) < self.keep:
                    self.kept.append(thread)
                    return
        thread.shutdown(wait=False)  # it ends once what it has in hand is done


class OneHopASGIHandler(ASGIHandler):
    def __init__(self, keep_threads: int = KEEP_THREADS):
        BaseHandler.__init__(self)  # not ASGIHandler's, which loads the chain in async mode
        self.load_middleware(is_async=False)
        self.threads = _RequestThreads(keep_threads)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        thread = self.threads.lend()
        try:
            async with ThreadSensitiveContext(executor=thread):
                await self.handle(scope, receive, send)
        finally:
            self.threads.give_back(thread)

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


def get_asgi_application() -> OneHopASGIHandler:
    """`django.core.asgi.get_asgi_application`, with this handler."""
    import django

    django.setup(set_prefix=False)
    return OneHopASGIHandler()
