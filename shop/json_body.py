"""The JSON API takes JSON only: a write whose body is sent as anything else is refused with 415.

Why: a cross-site HTML form can POST `text/plain`, `application/x-www-form-urlencoded` or
`multipart/form-data` without a CORS preflight, and a lenient parser would read such a body as JSON.
A request with an empty body and no content type (a bodiless POST such as a cancel) is fine.

Applied to each write route with `@decorate_view(json_only)`, so it runs before the body is parsed.
"""

from __future__ import annotations

from functools import wraps

from django.http import JsonResponse

JSON_TYPES = frozenset({"application/json"})


def refusal(request) -> JsonResponse | None:
    """A 415 answer when the request's body is not declared as JSON, else None."""
    content_type = request.META.get("CONTENT_TYPE", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in JSON_TYPES:
        return None
    if not media_type and not request.body:
        return None  # nothing sent, nothing to misread
    shown = media_type or "no Content-Type"
    detail = f"This API accepts only JSON bodies: send the body with 'Content-Type: application/json' (got {shown})."
    response = JsonResponse({"detail": detail}, status=415)
    response["Accept-Post"] = "application/json"
    return response


def json_only(view):
    """View decorator: answer 415 unless the body is JSON (see `refusal`)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        return refusal(request) or view(request, *args, **kwargs)

    return wrapper
