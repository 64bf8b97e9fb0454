"""ASGI entry point: HTTP through Django, websockets through Channels (authenticated, same-origin only)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Django serves each ASGI request in a thread of its own, so a persistent connection would be one per
# request left for the garbage collector (and its page cache with it): Django's docs advise 0 under ASGI.
# Closed SQLite connections wait in a bounded pool for the next request instead (SQLITE_POOL_SIZE).
os.environ.setdefault("DB_CONN_MAX_AGE", "0")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
