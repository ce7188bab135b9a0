"""Websocket: live progress of a campaign, for its members only."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import PermissionDenied
from django.http import Http404

from annotate.access import get_campaign_for_member


def campaign_group(campaign_id: int) -> str:
    return f"campaign-{campaign_id}"


class CampaignProgressConsumer(AsyncJsonWebsocketConsumer):
    """Pushes `{"type": "progress", ...}` events sent to the campaign's group.

    An event says that an item changed (a grade committed: its count of grades; a skip: the
    item only), never a score, a comment or a note: the pages that listen
    (static/js/live.js) re-fetch their numbers over HTTP, authorised like any page view.
    Authorised exactly like the campaign page (`get_campaign_for_member`): anonymous users
    and outsiders are refused before the handshake completes.
    """

    async def connect(self) -> None:
        self.campaign_id = int(self.scope["url_route"]["kwargs"]["campaign_id"])
        user = self.scope.get("user")
        try:
            await database_sync_to_async(get_campaign_for_member)(user, self.campaign_id)
        except (Http404, PermissionDenied):
            await self.close(code=4403)
            return
        await self.channel_layer.group_add(campaign_group(self.campaign_id), self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "campaign_id"):
            await self.channel_layer.group_discard(
                campaign_group(self.campaign_id), self.channel_name
            )

    async def receive_json(self, content, **kwargs) -> None:
        # Read-only channel: clients send nothing.
        pass

    async def campaign_progress(self, event: dict) -> None:
        await self.send_json({"type": "progress", **event.get("data", {})})
