"""Text no database can store (NUL, a lone surrogate) is refused on every write path.

SQLite would store a NUL; PostgreSQL refuses it mid-write (a 500). So the grading form,
the grading API and the importer check text with one rule (annotate/text.py) and answer
with a clear error, writing nothing. These tests run on both databases.
"""

from __future__ import annotations

import json
import uuid

import pytest
from django.urls import reverse

from annotate.models import CampaignItem, Draft, Grade, Skip
from annotate.text import text_problem
from annotate.work import queue
from tests.grading_support import submit_data

pytestmark = pytest.mark.django_db

NUL = "bad\x00text"
LONE_SURROGATE_JSON = '"bad \\ud800 text"'  # decodes to a str no database can encode


@pytest.mark.parametrize(
    "value, reason",
    [
        ("fine $x^2$ – ü", None),
        (NUL, "contains a NUL character"),
        ("bad \ud800", "contains an unpaired surrogate (not valid Unicode)"),
        ("x" * 11, "longer than 10 characters (11)"),
    ],
)
def test_text_problem_names_what_cannot_be_stored(value, reason):
    assert text_problem(value, 10 if len(value) == 11 else 100) == reason


@pytest.fixture
def leased(campaign, expert) -> CampaignItem:
    return queue.claim_next_item(campaign, expert)


def page_url(name: str, item: CampaignItem) -> str:
    return reverse(name, args=[item.campaign_id, item.pk])


def api_url(item: CampaignItem, suffix: str) -> str:
    return f"/api/campaigns/{item.campaign_id}/items/{item.pk}/{suffix}"


ISSUE_WITH_NUL_NOTE = json.dumps([{"start": 0, "end": 6, "note": NUL, "severity": "minor"}])


@pytest.mark.parametrize(
    "bad", [{"comment": NUL}, {"issues": ISSUE_WITH_NUL_NOTE}], ids=["comment", "issue note"]
)
def test_grading_form_refuses_a_nul_and_writes_nothing(client, expert, leased, bad):
    client.force_login(expert)
    response = client.post(page_url("grading_submit", leased), submit_data(**bad))
    assert response.status_code == 400
    assert "NUL character" in response.content.decode()
    assert not Grade.objects.exists()


def test_grading_form_draft_refuses_a_nul(client, expert, leased):
    client.force_login(expert)
    response = client.post(page_url("grading_draft", leased), {"comment": NUL})
    assert response.status_code == 400
    assert not Draft.objects.exists()


def test_grading_form_skip_refuses_a_nul_note(client, expert, leased):
    client.force_login(expert)
    body = {"reason": "statement_wrong", "note": NUL}
    response = client.post(page_url("grading_skip", leased), body)
    assert response.status_code == 400
    assert "NUL character" in response.content.decode()
    assert not Skip.objects.exists()


def api_post(client, url: str, raw_json: str, method: str = "post"):
    return getattr(client, method)(url, data=raw_json, content_type="application/json")


@pytest.mark.parametrize("bad_value", [json.dumps(NUL), LONE_SURROGATE_JSON])
def test_api_submit_refuses_unstorable_comment(client, expert, leased, bad_value):
    client.force_login(expert)
    key = str(uuid.uuid4())
    body = f'{{"score": 1, "comment": {bad_value}, "issues": [], "submission_key": "{key}"}}'
    response = api_post(client, api_url(leased, "grade/"), body)
    assert response.status_code == 400
    assert "comment" in response.json()
    assert not Grade.objects.exists()


def test_api_draft_refuses_unstorable_issue_note(client, expert, leased):
    client.force_login(expert)
    body = f'{{"issues": [{{"start": 0, "end": 6, "note": {LONE_SURROGATE_JSON}}}]}}'
    response = api_post(client, api_url(leased, "draft/"), body, method="put")
    assert response.status_code == 400
    assert "issues[0].note" in response.json()
    assert not Draft.objects.exists()


def test_api_skip_refuses_a_nul_note(client, expert, leased):
    client.force_login(expert)
    body = json.dumps({"reason": "statement_wrong", "note": NUL})
    response = api_post(client, api_url(leased, "skip/"), body)
    assert response.status_code == 400
    assert "NUL character" in response.json()["note"][0]
    assert not Skip.objects.exists()
