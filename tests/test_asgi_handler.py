"""runtime.asgi: the same answers as Django's ASGI handler, with fewer crossings to the request's thread."""

import asyncio
import json
import threading

from asgiref.testing import ApplicationCommunicator
from django.core.handlers.asgi import ASGIHandler
from django.db import OperationalError
from django.http import HttpResponse, JsonResponse
from django.test import override_settings
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from runtime.asgi import OneHopASGIHandler, _RequestThreads


@csrf_exempt
def _ok(request):
    return JsonResponse({"method": request.method, "body": request.body.decode()})


def _database_away(request):
    raise OperationalError("the server closed the connection")


def _form(request):  # a plain view: CsrfViewMiddleware's process_view guards its POST
    return HttpResponse("accepted")


def _where(request):
    return JsonResponse({"thread": threading.get_ident()})


urlpatterns = [path("ok", _ok), path("database-away", _database_away), path("form", _form), path("where", _where)]


async def _call(app, method: str, route: str, body: bytes = b"") -> tuple[int, dict, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": route,
        "raw_path": route.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    communicator = ApplicationCommunicator(app, scope)
    await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await communicator.receive_output(10)
    content = b""
    while True:
        message = await communicator.receive_output(10)
        content += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.wait(10)
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, content


def _answers(app) -> list:
    async def all_of_them():
        return [
            await _call(app, "GET", "/ok"),
            await _call(app, "POST", "/ok", b"ping"),
            await _call(app, "GET", "/database-away"),
            await _call(app, "POST", "/form", b"x=1"),
            await _call(app, "GET", "/nowhere"),
        ]

    answers = asyncio.run(all_of_them())
    # what may differ between two runs of the same request
    return [(status, {k: v for k, v in headers.items() if k != "date"}, body) for status, headers, body in answers]


@override_settings(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["localhost"])
def test_answers_are_those_of_djangos_own_handler():
    ours, django_s = _answers(OneHopASGIHandler()), _answers(ASGIHandler())
    assert ours == django_s
    statuses = [status for status, _, _ in ours]
    assert statuses == [200, 200, 503, 403, 404]  # the 503 of DatabaseUnavailableMiddleware, CSRF's 403
    assert ours[1][2] == b'{"method": "POST", "body": "ping"}'
    assert ours[2][1]["retry-after"] == "5"


def _thread_returns(app) -> int:
    """How often one GET hands work back from a thread to the event loop (each crossing ends with one)."""

    async def one_request():
        loop = asyncio.get_running_loop()
        original, count = loop.call_soon_threadsafe, [0]

        def counted(*args, **kwargs):
            count[0] += 1
            return original(*args, **kwargs)

        loop.call_soon_threadsafe = counted
        try:
            status, _, _ = await _call(app, "GET", "/ok")
        finally:
            loop.call_soon_threadsafe = original
        assert status == 200
        return count[0]

    return asyncio.run(one_request())


@override_settings(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["localhost"])
def test_the_chain_and_the_view_cross_to_the_thread_once():
    ours, django_s = _thread_returns(OneHopASGIHandler()), _thread_returns(ASGIHandler())
    # ours: request_started's receivers; the chain with the view; response.close(). Django's own handler also
    # crosses for each process_view, for the middleware below WhiteNoise, and to join the request's thread.
    assert ours == 3, ours
    assert ours < django_s, (ours, django_s)


@override_settings(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["localhost"])
def test_request_threads_are_lent_again_and_never_shared_by_two_requests_at_once():
    app = OneHopASGIHandler()

    async def threads_of(*batches: int) -> list[set[int]]:
        seen = []
        for at_once in batches:
            answers = await asyncio.gather(*[_call(app, "GET", "/where") for _ in range(at_once)])
            seen.append({json.loads(body)["thread"] for _, _, body in answers})
        return seen

    one, again, four = asyncio.run(threads_of(1, 1, 4))
    assert one == again  # the next request borrows the same thread
    assert len(four) == 4 and one <= four  # four at once: four threads, the idle one among them


def test_a_thread_still_busy_with_a_cancelled_request_is_not_lent():
    threads = _RequestThreads(keep=4)
    busy, release = threads.lend(), threading.Event()
    busy.submit(release.wait, 10)  # what a request cut short by a disconnect leaves running
    threads.give_back(busy)
    other = threads.lend()
    assert other is not busy
    release.set()
    threads.give_back(other)
    assert threads.lend() is other  # an idle thread is kept and lent again
