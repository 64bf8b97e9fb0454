"""Fixtures of the event viewer's tests (see viewer_support)."""

from .viewer_support import resetter_client, staff_client, topics  # noqa: F401
