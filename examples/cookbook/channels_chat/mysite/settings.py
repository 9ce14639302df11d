"""Settings of the tutorial chat, cut to what a WebSocket chat needs.

No database is touched at run time: sessions live in signed cookies (so
``AuthMiddlewareStack`` finds an anonymous user without a query) and the database is an
in-memory SQLite that nothing migrates. The channel layer is in memory: one process,
which is what ``--ws-app`` (uvicorn in a thread of pytest) and ``daphne`` both are.
"""

import os

__all__: list[str] = []

# An example's key, not a secret: set DJANGO_SECRET_KEY to use your own.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "cookbook-example-key-not-a-secret")
DEBUG = False
# AllowedHostsOriginValidator accepts a handshake whose Origin names one of these hosts.
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
    "chat",
]

ROOT_URLCONF = "mysite.urls"
ASGI_APPLICATION = "mysite.asgi.application"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
