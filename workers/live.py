"""Live run progress: tell a run's websocket group (workers/consumers.py) that it changed.

The event carries the run's figures (`ModelRun.to_dict`: counts, tokens, timing; never a
model's text); only those who may open the run page join the group."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)


def run_group(run_id: int) -> str:
    return f"model-run-{run_id}"


def send_run_progress(run_id: int) -> None:
    """Send the run's current figures to its group (after the change is committed)."""
    from workers.models import ModelRun

    try:
        layer = get_channel_layer()
        if layer is None:
            return
        run = ModelRun.objects.filter(pk=run_id).first()
        if run is None:
            return
        async_to_sync(layer.group_send)(
            run_group(run_id), {"type": "run.progress", "data": run.to_dict()}
        )
    except Exception:
        # Progress is a convenience; the outputs are already stored.
        log.exception("could not send progress for model run %s", run_id)
