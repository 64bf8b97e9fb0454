"""The event viewer's pages (staff only): thin views over selectors and services."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import asdict
from datetime import datetime, timedelta
from urllib.parse import urlencode

import orjson
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from eventbus import browse

from . import chaos, params, selectors, services, time_travel

RESET_PERMISSION = "dashboard.reset_offsets"
STREAM_CHUNK = 20  # matches handed from the scanning thread to the response at a time


def staff(view):
    return staff_member_required(view, login_url="/admin/login/")


def _broker_down(request, exc: Exception, template: str = "dashboard/viewer/error.html") -> HttpResponse:
    message = (
        f"Kafka did not answer ({type(exc).__name__}: {exc}). Check that the broker runs (`make kafka`) and reload."
    )
    return render(request, template, {"title": "Kafka unavailable", "message": message}, status=503)


def _no_topic(request, name: str) -> HttpResponse:
    message = f"There is no topic named {name!r} on this cluster. Choose one from the topics page."
    return render(request, "dashboard/viewer/error.html", {"title": "Unknown topic", "message": message}, status=404)


# --------------------------------------------------------------------------- topics


@staff
@require_GET
def topics(request):
    internal = request.GET.get("internal") == "1"
    name = request.GET.get("name", "").strip()
    try:
        rows = selectors.topics_overview(include_internal=internal, name=name)
    except browse.BrokerError as exc:
        return _broker_down(request, exc)
    context = {"topics": rows, "internal": internal, "name": name, "nav": "topics"}
    return render(request, "dashboard/viewer/topics.html", context)


@staff
@require_GET
def topic_counts(request):
    try:
        counts = selectors.topic_counts(include_internal=request.GET.get("internal") == "1")
    except browse.BrokerError as exc:
        return JsonResponse({"error": f"Kafka did not answer ({type(exc).__name__}); retrying"}, status=503)
    return JsonResponse({"topics": counts})


# --------------------------------------------------------------------------- messages


def _page_context(request, name: str, query: params.MessageQuery | None) -> dict:
    return {
        "nav": "topics",
        "topic_name": name,
        "query": query,
        "get": request.GET,
        "saved": selectors.saved_filters(request.user.get_username(), name),
        "limits": {
            "messages_cap": params.SEARCH_MESSAGES_CAP,
            "seconds_cap": params.SEARCH_SECONDS_CAP,
            "matches_cap": params.SEARCH_MATCHES_CAP,
        },
        "querystring": request.GET.urlencode(),
        "chosen_topics": request.GET.getlist("topic"),  # kept in the picker even when the query is refused
    }


def _with(request, **changes) -> str:
    """This view's query string with some parameters changed (None removes one)."""
    q = request.GET.copy()
    for k, v in changes.items():
        q.pop(k, None)
        if v is not None:
            q[k] = v
    return q.urlencode()


def _render_messages(request, context: dict, status: int = 200) -> HttpResponse:
    """The messages page; its partition boxes are the partition numbers of any chosen topic."""
    topics = context.get("topics") or ([context["topic"]] if context.get("topic") else [])
    context["partition_numbers"] = sorted({p.partition for t in topics for p in t.partitions})
    return render(request, "dashboard/viewer/messages.html", context, status=status)


def _unknown_among(request, name: str, unknown: str, context: dict) -> HttpResponse:
    """An unknown topic among several chosen: the page of the path's topic, saying which one to drop."""
    if unknown == name:
        return _no_topic(request, name)
    error = (
        f"There is no topic named {unknown!r} on this cluster; remove it from the chosen topics "
        "(or pick topics from the list)."
    )
    return _refused(request, name, error, context)


def _refused(request, name: str, error: str, context: dict) -> HttpResponse:
    """The page of the path's topic alone, with `error` (400); a 404 if that topic cannot be read either."""
    context["error"] = error
    with contextlib.suppress(browse.UnknownTopic, browse.BrokerError):
        context["topic"] = browse.topic(name)
        context["topics"] = [context["topic"]]
    if "topic" not in context:
        return _no_topic(request, name)
    return _render_messages(request, context, status=400)


@staff
@require_GET
def topic_messages(request, name: str):
    context = _page_context(request, name, None)
    with contextlib.suppress(browse.BrokerError):  # the topic picker; the page's own read reports a broker down
        context["topic_choices"] = [n for n in browse.topic_names() if n != name]
    try:
        query = params.parse_query(request.GET)
        context["query"] = query
        if query.filter.active:
            topics, windows = selectors.search_windows(name, query)
            context.update(
                topic=topics[0], topics=topics, search=True, scan_total=sum(b - a for a, b in windows.values())
            )
        else:
            page = selectors.messages_page(name, query)
            context.update(
                topic=page.topic,
                topics=page.topics,
                page=page,
                older=_with(request, cursor=page.prev_cursor, dir="prev") if page.prev_cursor else None,
                newer=_with(request, cursor=page.next_cursor, dir="next") if page.next_cursor else None,
            )
    except browse.UnknownTopic as exc:
        return _unknown_among(request, name, str(exc.args[0]) if exc.args else name, context)
    except ValueError as exc:  # BadQuery, BadFilter
        return _refused(request, name, str(exc), context)
    except browse.BrokerError as exc:
        return _broker_down(request, exc)
    return _render_messages(request, context)


def _line(obj: dict) -> bytes:
    return orjson.dumps(obj) + b"\n"


async def _search_stream(windows: dict[tuple[str, int], tuple[int, int]], query: params.MessageQuery):
    """NDJSON: `start`, then `match` (with the message's HTML) and `progress` lines, then `done`. Closing
    the response (the browser's Cancel aborts its fetch) stops the scan at its next batch."""
    loop = asyncio.get_running_loop()
    cancelled = threading.Event()
    lock = threading.Lock()
    scan = browse.scan_many(
        windows,
        query.filter.matcher(),
        max_messages=query.max_messages,
        max_seconds=query.max_seconds,
        max_matches=query.max_matches,
        cancelled=cancelled.is_set,
    )

    def step() -> list[bytes]:
        out = []
        with lock:
            for item in scan:
                if isinstance(item, browse.ScanProgress):
                    line = {"kind": "done" if item.done else "progress", "scanned": item.scanned}
                    line["elapsed"] = round(item.elapsed, 2)
                    if item.done:
                        line["reason"] = item.reason
                        left = {p: o for p, o in item.positions.items() if o < windows[p][1]}
                        line["resume"] = selectors.cursor_text(left) if left else ""
                    out.append(_line(line))
                    return out
                html = render_to_string("dashboard/viewer/_message.html", {"m": selectors.describe(item)})
                match = {"kind": "match", "topic": item.topic, "partition": item.partition, "offset": item.offset}
                out.append(_line({**match, "html": html}))
                if len(out) >= STREAM_CHUNK:
                    return out
        return out

    def stop() -> None:
        with lock:
            scan.close()

    total = sum(b - a for a, b in windows.values())
    yield _line(
        {
            "kind": "start",
            "total": total,
            "limits": {"messages": query.max_messages, "seconds": query.max_seconds, "matches": query.max_matches},
        }
    )
    try:
        while True:
            try:
                lines = await loop.run_in_executor(None, step)
            except browse.BrokerError as exc:
                yield _line({"kind": "error", "message": f"Kafka did not answer ({type(exc).__name__}); search again"})
                return
            if not lines:
                return
            yield b"".join(lines)
            if lines[-1].startswith(b'{"kind":"done"'):
                return
    finally:
        cancelled.set()
        loop.run_in_executor(None, stop)


@staff
@require_GET
def topic_search(request, name: str):
    try:
        query = params.parse_query(request.GET)
        if not query.filter.active:
            raise params.BadQuery("give something to search for: q, key, type, header or field")
        _topics, windows = selectors.search_windows(name, query)
    except browse.UnknownTopic as exc:
        unknown = str(exc.args[0]) if exc.args else name
        message = f"There is no topic named {unknown!r}. Choose topics from /dashboard/topics/."
        return JsonResponse({"error": message}, status=404 if unknown == name else 400)
    except ValueError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    except browse.BrokerError as exc:
        return JsonResponse({"error": f"Kafka did not answer ({type(exc).__name__}); try again"}, status=503)
    response = StreamingHttpResponse(_search_stream(windows, query), content_type="application/x-ndjson")
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"
    return response


@staff
@require_POST
def save_filter(request, name: str):
    try:
        services.save_filter(
            username=request.user.get_username(),
            topic=name,
            name=request.POST.get("name", ""),
            query=request.POST.get("query", ""),
        )
    except ValueError as exc:
        context = _page_context(request, name, None)
        context.update(error=str(exc), topic=None)
        with contextlib.suppress(browse.UnknownTopic, browse.BrokerError):
            context["topic"] = browse.topic(name)
        return _render_messages(request, context, status=400)
    return redirect(f"/dashboard/topics/{name}/?{request.POST.get('query', '')}")


@staff
@require_POST
def delete_filter(request, name: str, pk: int):
    services.delete_filter(username=request.user.get_username(), pk=pk)
    return redirect(f"/dashboard/topics/{name}/")


# --------------------------------------------------------------------------- consumer groups


@staff
@require_GET
def groups(request):
    name = request.GET.get("name", "").strip()
    try:
        rows = selectors.groups_overview(name=name)
    except browse.BrokerError as exc:
        return _broker_down(request, exc)
    return render(
        request,
        "dashboard/viewer/groups.html",
        {
            "nav": "groups",
            "name": name,
            "groups": rows,
            "log": selectors.operator_log(),
            "can_reset": request.user.has_perm(RESET_PERMISSION),
        },
    )


def _reset_request(group_id: str, data) -> services.ResetRequest:
    strategy = data.get("strategy", "")
    moment = None
    if strategy == "time":
        raw = data.get("time", "").strip()
        moment = params.parse_time(raw)
        if moment is None:
            raise services.ResetRefused(
                f"time: {raw!r} is not an RFC 3339 time with a zone; write e.g. 2025-01-31T09:30:00Z"
            )
    offsets = None
    if strategy == "offsets":
        offsets = {}
        for key, value in data.items():
            if key.startswith("offset:") and value.strip():
                _, topic, partition = key.rsplit(":", 2) if key.count(":") >= 2 else ("", "", "")
                if not partition.isdigit() or not value.strip().isdigit():
                    raise services.ResetRefused(f"{key}: give a whole number of 0 or more")
                offsets[(topic, int(partition))] = int(value.strip())
    return services.ResetRequest(
        group=group_id, strategy=strategy, topic=data.get("topic", ""), time=moment, offsets=offsets
    )


@staff
def reset(request, group_id: str):
    """GET: the form; POST action=preview: where each partition would go; POST action=confirm: do it."""
    context = {"nav": "groups", "group_id": group_id, "data": request.POST if request.method == "POST" else request.GET}
    if not request.user.has_perm(RESET_PERMISSION):
        context["error"] = (
            "Resetting offsets needs the permission “Can reset a consumer group's committed offsets” "
            "(dashboard.reset_offsets). Ask an administrator to grant it in /admin/."
        )
        return render(request, "dashboard/viewer/reset.html", context, status=403)
    try:
        group = browse.group(group_id)
    except browse.UnknownGroup:
        context["error"] = f"There is no consumer group {group_id!r}. Choose one from the groups page."
        return render(request, "dashboard/viewer/reset.html", context, status=404)
    except browse.BrokerError as exc:
        return _broker_down(request, exc)
    context["group"] = group
    context["partitions"] = sorted(set(group.committed) | {tp for m in group.members for tp in m.assignments})
    if group.members:
        context["error"] = services.members_message(group)
    if request.method != "POST":
        return render(request, "dashboard/viewer/reset.html", context, status=409 if group.members else 200)
    try:
        reset_request = _reset_request(group_id, request.POST)
        if request.POST.get("action") == "confirm":
            rows = services.reset_offsets(reset_request, username=request.user.get_username())
            context.update(done=rows, error="")
        else:
            context["preview"] = services.preview_reset(reset_request)
            context["confirm_query"] = urlencode({k: v for k, v in request.POST.items() if k != "csrfmiddlewaretoken"})
    except services.ResetRefused as exc:
        context["error"] = str(exc)
        return render(request, "dashboard/viewer/reset.html", context, status=409 if group.members else 400)
    except browse.BrokerError as exc:
        return _broker_down(request, exc)
    return render(request, "dashboard/viewer/reset.html", context)


# --------------------------------------------------------------------------- the service map

MAP_POSITIONS = {"shop": (130, 240), "inventory": (460, 50), "shipping": (790, 240), "dashboard": (460, 430)}
LABEL_AT = 0.64  # labels sit past the middle of their arrow, so two arrows crossing keep theirs apart
LABEL_STEP = -0.16  # and arrows going the same way between the same services stagger theirs
FAN = 30  # pixels between the curves joining the same two services


def _layout(nodes: list[dict], edges: list[dict]) -> tuple[list[dict], list[dict]]:
    """Fixed places for the known services (others on a row below); each edge a curve between its nodes.
    The edges between one pair of services (either way) fan out side by side, so none hides another."""
    spare = iter(range(100, 900, 160))
    at = {n["name"]: MAP_POSITIONS.get(n["name"]) or (next(spare, 820), 520) for n in nodes}
    placed_nodes = [{**n, "x": at[n["name"]][0], "y": at[n["name"]][1]} for n in nodes]
    pairs: dict[tuple[str, str], list[dict]] = {}
    for e in edges:
        pairs.setdefault(tuple(sorted((e["from"], e["to"]))), []).append(e)
    placed_edges = []
    for (a, b), group in sorted(pairs.items()):
        (ax, ay), (bx, by) = at.get(a, (0, 0)), at.get(b, (0, 0))
        length = max(1.0, ((bx - ax) ** 2 + (by - ay) ** 2) ** 0.5)
        nx, ny = -(by - ay) / length, (bx - ax) / length  # the pair's normal, the same for both directions
        for i, e in enumerate(group):
            bend = FAN * (i - (len(group) - 1) / 2) * 2
            (x1, y1), (x2, y2) = at.get(e["from"], (0, 0)), at.get(e["to"], (0, 0))
            cx, cy = (x1 + x2) / 2 + nx * bend, (y1 + y2) / 2 + ny * bend
            same_way = [o for o in group if o["from"] == e["from"]]
            t = LABEL_AT + LABEL_STEP * same_way.index(e)  # the label's point on the quadratic curve
            lx = (1 - t) ** 2 * x1 + 2 * (1 - t) * t * cx + t**2 * x2
            ly = (1 - t) ** 2 * y1 + 2 * (1 - t) * t * cy + t**2 * y2
            placed_edges.append(
                {
                    **e,
                    "label": selectors.logical_topic(e["topic"]),
                    **{"x1": x1, "y1": y1, "x2": x2, "y2": y2, "cx": round(cx), "cy": round(cy)},
                    **{"lx": round(lx), "ly": round(ly)},
                }
            )
    return placed_nodes, placed_edges


def _render_map(request, *, error: str = "", status: int = 200, data=None):
    try:
        found = selectors.service_map()
    except browse.BrokerError as exc:
        return _broker_down(request, exc)
    nodes, edges = _layout(found["nodes"], found["edges"])
    switches = chaos.switches_on()
    for node in nodes:
        node["chaos"] = [s for s in switches if s.service == node["name"]]
        node["chaos_y"] = node["y"] - 34 if node["y"] < 100 else node["y"] + 42  # clear of the arrows
    context = {
        "nav": "map",
        "nodes": nodes,
        "edges": edges,
        "error": error,
        "chaos": {
            "enabled": chaos.enabled(),
            "allowed": request.user.has_perm(chaos.PERMISSION),
            "off_message": chaos.OFF_MESSAGE,
            "permission_message": chaos.PERMISSION_MESSAGE,
            "switches": switches,
            "services": [{"name": n, "event_types": chaos.event_types(n)} for n in chaos.services()],
            "default_minutes": chaos.DEFAULT_MINUTES,
            "data": data or {},
        },
    }
    return render(request, "dashboard/viewer/map.html", context, status=status)


@staff
@require_GET
def service_map(request):
    return _render_map(request)


@staff
@require_GET
def service_map_data(request):
    try:
        found = selectors.service_map()
    except browse.BrokerError as exc:
        return JsonResponse({"error": f"Kafka did not answer ({type(exc).__name__}); retrying"}, status=503)
    return JsonResponse({**found, "chaos": [asdict(s) for s in chaos.switches_on()]})


@staff
@require_POST
def chaos_switch(request):
    """Turn a chaos switch on (action=on) or off (action=off), then back to the map."""
    try:
        if request.POST.get("action") == "off":
            was_on = chaos.turn_off(user=request.user, data=request.POST)
            service, kind = request.POST["service"], request.POST["kind"]
            messages.success(request, f"{service}: {kind} turned off" if was_on else f"{service}: {kind} was not on")
        else:
            switch = chaos.turn_on(user=request.user, data=request.POST)
            minutes = round((switch.until - timezone.now().timestamp()) / 60)
            messages.success(request, f"{switch.service}: {switch.describe()} for {minutes} min (it ends itself then)")
    except chaos.Refused as exc:
        return _render_map(request, error=str(exc), status=exc.status, data=request.POST)
    return redirect("dashboard:map")


# --------------------------------------------------------------------------- time travel

REPLAY_DEFAULT = timedelta(minutes=15)


def _window(data) -> tuple[datetime, datetime]:
    """`since` and `until` (RFC 3339) from the query; by default the last 15 minutes."""
    found = {}
    for name in ("since", "until"):
        raw = (data.get(name) or "").strip()
        if not raw:
            continue
        value = params.parse_time(raw)
        if value is None:
            raise time_travel.BadWindow(
                f"{name}: {raw!r} is not an RFC 3339 time with a zone, e.g. 2025-01-31T09:30:00Z"
            )
        found[name] = value
    until = found.get("until") or timezone.now()
    since = found.get("since") or until - REPLAY_DEFAULT
    time_travel.check(since, until)
    return since, until


@staff
@require_GET
def board_replay(request):
    """The replay now lives under the live board (its scrubber); a replay link opens the board at its window."""
    try:
        since, until = _window(request.GET)
    except time_travel.BadWindow as exc:
        context = {"title": "Time travel", "message": f"{exc}. Or open /dashboard/ and drag the scrubber."}
        return render(request, "dashboard/viewer/error.html", context, status=400)
    return redirect(f"/dashboard/?{urlencode({'since': since.isoformat(), 'until': until.isoformat()})}")


@staff
@require_GET
def board_history(request):
    try:
        since, until = _window(request.GET)
        return JsonResponse(time_travel.history(since, until))
    except time_travel.BadWindow as exc:
        return JsonResponse({"error": str(exc)}, status=400)


# --------------------------------------------------------------------------- schemas


@staff
@require_GET
def schema_catalogue(request):
    return render(request, "dashboard/viewer/schemas.html", {"nav": "schemas", "types": selectors.schema_catalogue()})
