"""Live progress: tell a campaign's websocket group (annotate/consumers.py) that an item's
count changed. Counts only, never a score or a note: the group reaches every member."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from annotate.consumers import campaign_group

log = logging.getLogger(__name__)


def send_progress(campaign_id: int, data: dict[str, Any]) -> None:
    """Tell the campaign's websocket group an item's count changed (never a score)."""
    try:
        layer = get_channel_layer()
        if layer is None:
            return
        async_to_sync(layer.group_send)(
            campaign_group(campaign_id), {"type": "campaign.progress", "data": data}
        )
    except Exception:
        # Progress is a convenience; the work is already committed.
        log.exception("could not send progress for campaign %s", campaign_id)
