"""Websocket: live progress of a model run, for those who may open its page."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import PermissionDenied
from django.http import Http404

from annotate.access import get_model_run
from workers.live import run_group


class RunProgressConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]  # untyped
    """Pushes `{"type": "progress", ...the run's figures}` after every stored batch, a
    cancel and a resume. Authorised exactly like the run page (`get_model_run`): anonymous
    users and outsiders are refused (close code 4403) before the handshake completes; the
    page (static/js/live.js) re-fetches its status part over HTTP on each event."""

    async def connect(self) -> None:
        self.run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        try:
            await database_sync_to_async(get_model_run)(self.scope.get("user"), self.run_id)
        except (Http404, PermissionDenied):
            await self.close(code=4403)
            return
        await self.channel_layer.group_add(run_group(self.run_id), self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "run_id"):
            await self.channel_layer.group_discard(run_group(self.run_id), self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        pass  # read-only channel: clients send nothing

    async def run_progress(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "progress", **event.get("data", {})})
