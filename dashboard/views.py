"""The dashboard page and its small JSON API (staff only)."""

from __future__ import annotations

import json

from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpResponseBadRequest, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from . import dead_letters, read_model
from .models import STAGES

STAGE_HELP = {
    "placed": "the shop took the order",
    "reserved": "inventory reserved every line",
    "packed": "shipping packed it",
    "dispatched": "on its way",
    "delivered": "done",
    "rejected": "not enough stock",
    "cancelled": "cancelled before dispatch",
}


def _staff(view):
    return staff_member_required(view, login_url="/admin/login/")


@_staff
@require_GET
def index(request):
    stages = [{"name": s, "help": STAGE_HELP[s], "exit": s in ("rejected", "cancelled")} for s in STAGES]
    # Staff without the dead-letter permission see dead letters but no replay/discard buttons.
    can_act = request.user.has_perm(REPLAY_PERMISSION)
    return render(request, "dashboard/index.html", {"stages": stages, "can_act_on_dead_letters": can_act})


@_staff
@require_GET
def state(request):
    """A catch-up (or a snapshot without `since`), the same as the websocket answers."""
    since = request.GET.get("since")
    if since not in (None, "") and not since.isdigit():
        return HttpResponseBadRequest("since must be a sequence number")
    return JsonResponse(read_model.catch_up(int(since) if since else None))


@_staff
@require_GET
def event(request, seq: int):
    detail = read_model.event_detail(seq)
    if detail is None:
        raise Http404("no such event")
    return JsonResponse(detail)


@_staff
@require_GET
def journey(request, order_id: str):
    return JsonResponse(read_model.journey(order_id))


def _ids(request) -> list[int] | None:
    if request.content_type == "application/json":
        try:
            raw = json.loads(request.body or b"{}").get("ids", [])
        except (ValueError, AttributeError):
            return None
    else:
        raw = request.POST.getlist("ids")
    try:
        ids = [int(i) for i in raw]
    except (TypeError, ValueError):
        return None
    return ids or None


REPLAY_PERMISSION = "dashboard.change_deadletter"


def _may_change_dead_letters(view):
    """Replay and discard need the dead-letter model's change permission, as in the admin."""

    def wrapper(request, *args, **kwargs):
        if not request.user.has_perm(REPLAY_PERMISSION):
            return JsonResponse(
                {"error": f"you need the permission {REPLAY_PERMISSION!r} (ask an administrator to grant it)"},
                status=403,
            )
        return view(request, *args, **kwargs)

    return wrapper


@_staff
@require_POST
@_may_change_dead_letters
def replay(request):
    ids = _ids(request)
    if ids is None:
        return JsonResponse({"error": "ids: a non-empty list of dead-letter ids"}, status=400)
    done = dead_letters.replay(ids, request.user)
    return JsonResponse(
        {"replayed": [d.pk for d in done], "dead_letters": [read_model.dead_letter_row(d) for d in done]}
    )


@_staff
@require_POST
@_may_change_dead_letters
def discard(request):
    ids = _ids(request)
    if ids is None:
        return JsonResponse({"error": "ids: a non-empty list of dead-letter ids"}, status=400)
    done = dead_letters.discard(ids, request.user)
    return JsonResponse(
        {"discarded": [d.pk for d in done], "dead_letters": [read_model.dead_letter_row(d) for d in done]}
    )
