"""The campaign progress websocket: members only, fed through the channel layer.

The consumer checks access in a worker thread, so these tests use `transactional_db`:
rows must be committed to be seen there. Each scenario runs in one event loop
(`async_to_sync`), so no async test plugin is needed.
"""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from annotate.consumers import campaign_group
from annotate.models import Campaign, Grade
from annotate.work import queue
from proofdesk.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://localhost")
TIMEOUT = 3  # seconds to wait for a frame that should arrive; never reached on success


def session_cookie(user) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    name = django_settings.SESSION_COOKIE_NAME
    return (b"cookie", f"{name}={client.cookies[name].value}".encode())


def communicator(campaign: Campaign, headers: list[tuple[bytes, bytes]]) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, f"/ws/campaigns/{campaign.pk}/", headers=headers)


def connect(campaign: Campaign, headers: list[tuple[bytes, bytes]]) -> tuple[bool, object]:
    async def scenario():
        ws = communicator(campaign, headers)
        result = await ws.connect(timeout=TIMEOUT)
        await ws.disconnect()
        return result

    return async_to_sync(scenario)()


def receive_progress(campaign: Campaign, user) -> dict:
    """Connect as `user`, send a progress event to the campaign's group, return the frame."""
    cookie = session_cookie(user)  # before the event loop: the ORM is sync-only

    async def scenario():
        ws = communicator(campaign, [ORIGIN, cookie])
        connected, _ = await ws.connect(timeout=TIMEOUT)
        assert connected
        try:
            await get_channel_layer().group_send(
                campaign_group(campaign.pk),
                {"type": "campaign.progress", "data": {"complete": 3, "total": 5}},
            )
            return await ws.receive_json_from(timeout=TIMEOUT)
        finally:
            await ws.disconnect()

    return async_to_sync(scenario)()


def test_anonymous_user_is_refused(campaign):
    assert connect(campaign, [ORIGIN]) == (False, 4403)


def test_outsider_is_refused(campaign, outsider):
    assert connect(campaign, [ORIGIN, session_cookie(outsider)]) == (False, 4403)


def test_unknown_campaign_is_refused(campaign, expert):
    missing = Campaign(pk=campaign.pk + 1000)
    assert connect(missing, [ORIGIN, session_cookie(expert)]) == (False, 4403)


def test_foreign_origin_is_refused(campaign, expert):
    connected, _ = connect(campaign, [(b"origin", b"https://evil.example"), session_cookie(expert)])
    assert connected is False


def test_member_is_accepted_and_receives_progress(campaign, expert):
    assert receive_progress(campaign, expert) == {"type": "progress", "complete": 3, "total": 5}


def test_member_does_not_receive_another_campaigns_progress(campaign, expert):
    other = Campaign.objects.create(name="Other")
    cookie = session_cookie(expert)

    async def scenario():
        ws = communicator(campaign, [ORIGIN, cookie])
        assert (await ws.connect(timeout=TIMEOUT))[0]
        try:
            layer = get_channel_layer()
            await layer.group_send(campaign_group(other.pk), {"type": "campaign.progress"})
            await layer.group_send(
                campaign_group(campaign.pk), {"type": "campaign.progress", "data": {"n": 1}}
            )
            # Group delivery is in order, so the first frame tells whether the other leaked.
            return await ws.receive_json_from(timeout=TIMEOUT)
        finally:
            await ws.disconnect()

    assert async_to_sync(scenario)() == {"type": "progress", "n": 1}


def test_progress_travels_through_redis(campaign, expert, redis_url, settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": "proofdesk-test"},
        }
    }
    assert type(get_channel_layer()).__name__ == "RedisChannelLayer"
    assert receive_progress(campaign, expert) == {"type": "progress", "complete": 3, "total": 5}


@pytest.fixture(params=["in-memory", "redis"])
def channel_layer(request, settings) -> str:
    """Each of the channel layers production uses: in-memory (no REDIS_URL), and Redis
    (skipped without REDIS_URL, mandatory in CI)."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [url], "prefix": "proofdesk-test"},
            }
        }
    else:
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return request.param


def test_a_grade_submitted_on_the_page_reaches_a_watching_member(
    campaign, owner, expert, channel_layer
):
    """The whole path: the grading form's POST commits the grade, its on-commit event goes
    through the channel layer to the consumer, and the owner's socket gets the frame."""
    watcher = session_cookie(owner)
    item = queue.claim_next_item(campaign, expert)
    grader = Client()
    grader.force_login(expert)
    key = str(uuid.uuid4())
    form = {"score": "0.5", "comment": "Zebra", "issues": "[]", "active_seconds": "30"}

    def submit() -> int:
        url = reverse("grading_submit", args=[campaign.pk, item.pk])
        return grader.post(url, {**form, "submission_key": key}).status_code

    async def scenario():
        ws = communicator(campaign, [ORIGIN, watcher])
        assert (await ws.connect(timeout=TIMEOUT))[0]
        try:
            status = await sync_to_async(submit)()
            return status, await ws.receive_json_from(timeout=TIMEOUT)
        finally:
            await ws.disconnect()

    status, frame = async_to_sync(scenario)()
    assert status == 302
    assert Grade.objects.get(submission_key=key).grader == expert
    # Counts only: no score, no comment, nobody's name (watchers may be graders of the item).
    assert frame == {"type": "progress", "item": item.pk, "committed": 1, "overlap": 2}
