from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proofdesk.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from annotate.consumers import CampaignProgressConsumer  # noqa: E402
from workers.consumers import RunProgressConsumer  # noqa: E402

websocket_urlpatterns = [
    path("ws/campaigns/<int:campaign_id>/", CampaignProgressConsumer.as_asgi()),
    path("ws/runs/<int:run_id>/", RunProgressConsumer.as_asgi()),
]

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
