"""``--ws-app`` serves any ASGI app: a real Django Channels project, whose
``ProtocolTypeRouter`` has no lifespan ("No application configured for scope type
'lifespan'"), served in a thread and in a subprocess with the default lifespan "auto"
and no shim; its settings module comes from ``app_env`` in the config. With lifespan
"on" the start fails at once and the error hints ``--ws-app-lifespan=off``.
"""

from __future__ import annotations

import textwrap

import pytest

pytestmark = pytest.mark.websocket_integration

#: The project as a user writes it: settings, a consumer, the router. ``asgi.py`` does
#: not set DJANGO_SETTINGS_MODULE itself: the plugin's ``app_env`` does.
PROJECT = {
    "mysite/__init__.py": "",
    "mysite/settings.py": """
        SECRET_KEY = "test-only-not-a-secret"
        DEBUG = True
        ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
        INSTALLED_APPS = ["channels"]
        ROOT_URLCONF = "mysite.urls"
        ASGI_APPLICATION = "mysite.asgi.application"
        DATABASES = {}
        USE_TZ = True
    """,
    "mysite/urls.py": "urlpatterns = []\n",
    "mysite/asgi.py": """
        from django.core.asgi import get_asgi_application

        django_asgi_app = get_asgi_application()

        from channels.routing import ProtocolTypeRouter, URLRouter
        from django.urls import path

        from chat.consumers import EchoConsumer

        application = ProtocolTypeRouter(
            {
                "http": django_asgi_app,
                "websocket": URLRouter([path("ws/echo/<str:room>/", EchoConsumer.as_asgi())]),
            }
        )
    """,
    "chat/__init__.py": "",
    "chat/consumers.py": """
        import os

        from channels.generic.websocket import AsyncWebsocketConsumer


        class EchoConsumer(AsyncWebsocketConsumer):
            async def connect(self):
                self.room = self.scope["url_route"]["kwargs"]["room"]
                await self.accept()

            async def receive(self, text_data=None, bytes_data=None):
                settings = os.environ.get("DJANGO_SETTINGS_MODULE")
                await self.send(text_data=f"{self.room}:{settings}:{text_data}")
    """,
}

CONFIG = """
[tool.ws_resilience]
path = "/ws/echo/lobby/"
app_env = { DJANGO_SETTINGS_MODULE = "mysite.settings" }
"""

INNER_TESTS = """
import os

import pytest
from websockets.asyncio.client import connect


@pytest.mark.asyncio
async def test_the_consumer_answers_in_its_room(ws_server):
    url = ws_server.url_for("/ws/echo/{room}/", room="kitchen")
    assert url.endswith("/ws/echo/kitchen/") and url.startswith("ws://127.0.0.1:")
    async with connect(url) as conn:
        await conn.send("hello")
        assert await conn.recv() == "kitchen:mysite.settings:hello"


@pytest.mark.asyncio
async def test_the_configured_path_is_served(ws_server):
    async with connect(str(ws_server)) as conn:
        await conn.send("hi")
        assert (await conn.recv()).startswith("lobby:")
"""


@pytest.fixture
def channels_project(ws_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    monkeypatch.delenv("WS_ENV", raising=False)
    for name, text in PROJECT.items():
        path = ws_pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    ws_pytester.makepyprojecttoml(CONFIG)
    ws_pytester.makepyfile(test_chat=INNER_TESTS)
    return ws_pytester


@pytest.mark.parametrize("mode", [[], ["--ws-app-subprocess"]], ids=["thread", "subprocess"])
def test_a_channels_router_is_served_with_lifespan_auto_and_no_shim(
    channels_project: pytest.Pytester, mode: list[str]
) -> None:
    result = channels_project.runpytest_subprocess(
        "-p", "ws_resilience", "--ws-app=mysite.asgi:application", *mode
    )
    result.assert_outcomes(passed=2)
    assert "No application configured for scope type 'lifespan'" not in result.stdout.str()


@pytest.mark.parametrize("mode", [[], ["--ws-app-subprocess"]], ids=["thread", "subprocess"])
def test_lifespan_on_fails_at_once_with_the_off_hint(
    channels_project: pytest.Pytester, mode: list[str]
) -> None:
    result = channels_project.runpytest_subprocess(
        "-p", "ws_resilience", "--ws-app=mysite.asgi:application", "--ws-app-lifespan=on", *mode
    )
    result.assert_outcomes(errors=1)
    output = result.stdout.str()
    assert "No application configured for scope type 'lifespan'" in output
    result.stdout.fnmatch_lines(
        ["hint: the app looks like it does not support the ASGI lifespan*--ws-app-lifespan=off*"]
    )


def test_app_env_is_restored_after_an_in_process_app_stops(
    channels_project: pytest.Pytester,
) -> None:
    channels_project.makeconftest(
        """
        import os

        def pytest_unconfigure(config):
            print("settings after the run:", os.environ.get("DJANGO_SETTINGS_MODULE"))
        """
    )
    result = channels_project.runpytest_subprocess(
        "-p", "ws_resilience", "--ws-app=mysite.asgi:application", "-s"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["settings after the run: None"])
