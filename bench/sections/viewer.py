"""Section 9: the staff event viewer's search, through its public route: `GET /dashboard/topics/<name>/?q=…`
with a text no message holds, so the viewer reads the whole topic. `viewer_scan_messages_per_s` = the
messages on the topic ÷ the seconds the answer took (the best of three). A tree without the viewer
(the route answers 404) records why and moves on.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from bench.common import say
from bench.deliveries import Deliveries

TOPIC = "shop.orders"
NEEDLE = "no-message-holds-this-text-7f3a"


def run(b) -> None:
    counter = Deliveries([], b.prefix)
    try:
        messages = counter.published_on([b.prefix + TOPIC])
    finally:
        counter.close()
    tried = {}
    for name in (TOPIC, b.prefix + TOPIC):  # the viewer may list logical or physical names
        url = f"http://127.0.0.1:{b.web_port}/dashboard/topics/{name}/?q={NEEDLE}"
        request = urllib.request.Request(url, headers={"Cookie": f"sessionid={b.session_key}"})
        best = None
        try:
            for _ in range(3):
                started = time.perf_counter()
                with urllib.request.urlopen(request, timeout=120) as answer:  # noqa: S310 (loopback, ours)
                    answer.read()
                took = time.perf_counter() - started
                best = took if best is None else min(best, took)
        except urllib.error.HTTPError as exc:
            tried[name] = f"HTTP {exc.code}"
            continue
        b.result["viewer_scan_messages_per_s"] = round(messages / best, 1)
        b.result["sections"]["viewer"] = {"topic": name, "messages": messages, "seconds": round(best, 3)}
        say(f"9 viewer: searched {messages} messages of {name} in {best:.2f}s")
        return
    b.result["viewer_scan_messages_per_s"] = None
    b.result["sections"]["viewer"] = {"not_measured": tried}
    say(f"9 viewer: no event viewer answered ({tried}); viewer_scan_messages_per_s not measured")
