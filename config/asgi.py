"""ASGI entry point: HTTP through Django, websockets through Channels (authenticated, same-origin only),
behind the trusted-proxy resolution and the access log."""

import os

from runtime.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Django's ASGI handler serves each request in a new thread, so a persistent connection would be one per
# request left for the garbage collector (and its page cache with it): Django's docs advise 0 under ASGI.
# Our handler (runtime/asgi.py) lends kept threads, but a request beyond them still gets a new one.
# Closed SQLite connections wait in a bounded pool for the next request instead (SQLITE_POOL_SIZE).
os.environ.setdefault("DB_CONN_MAX_AGE", "0")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from config.access_log import AccessLogMiddleware  # noqa: E402
from config.proxies import TrustedProxies, TrustedProxiesMiddleware  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402
from config.websocket_security import ConnectionLimit, SameOriginValidator  # noqa: E402

PUBLIC_SOCKETS = ("/ws/stock/", "/ws/orders/")  # open to anyone: bounded per client

# Outermost first: the client is resolved through the trusted proxies before anything reads or logs it.
application = TrustedProxiesMiddleware(
    AccessLogMiddleware(
        ProtocolTypeRouter(
            {
                "http": django_asgi_app,
                "websocket": SameOriginValidator(
                    ConnectionLimit(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)), PUBLIC_SOCKETS)
                ),
            }
        )
    ),
    TrustedProxies.parse(settings.TRUSTED_PROXIES),
)

from runtime.heap import freeze_startup_objects  # noqa: E402

freeze_startup_objects()  # last: every module the server needs to start is loaded
