"""A database that is away is an outage, not a bug: answer 503 with a reason (never 500)."""

import logging

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse

log = logging.getLogger("conveyor.web")


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, (OperationalError, InterfaceError)):
            log.warning("database unavailable while serving %s: %s", request.path, exception)
            response = JsonResponse(
                {"error": "service-unavailable", "detail": "a database is unavailable; retry shortly"}, status=503
            )
            response["Retry-After"] = "5"
            return response
        return None
