"""ASGI entry point, as in Channels' tutorial: HTTP to Django, WebSocket to the chat.

Served by ``daphne -p 8000 mysite.asgi:application`` or, in the tests, by the plugin
(``app = "mysite.asgi:application"``).
"""

import os

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.asgi import get_asgi_application

__all__ = ["application"]

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
# Django is set up before anything imports models (the consumers do, through auth).
django_asgi_app = get_asgi_application()

from chat.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
