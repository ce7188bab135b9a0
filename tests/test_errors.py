"""Error pages: the site's layout, the reason the server knows, a way back; one log line."""

from __future__ import annotations

import logging

import pytest
from django.test import RequestFactory
from django.urls import reverse

from annotate.views import errors
from annotate.work import queue

pytestmark = pytest.mark.django_db


@pytest.fixture(params=[False, True], ids=["debug off", "debug on"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


@pytest.fixture
def leased_to_expert2(campaign, expert2):
    return queue.claim_next_item(campaign, expert2)


def in_layout(html: str) -> bool:
    return 'class="topbar"' in html and 'href="/"' in html


def test_a_proof_not_assigned_to_you_is_a_403_page_with_the_reason_and_a_way_back(
    client, expert, campaign, leased_to_expert2, debug
):
    client.force_login(expert)
    response = client.get(reverse("grading_page", args=[campaign.pk, leased_to_expert2.pk]))
    html = response.content.decode()
    assert response.status_code == 403
    assert in_layout(html)
    assert "This proof is not assigned to you." in html
    assert f'href="{reverse("campaign_detail", args=[campaign.pk])}">Back to Test campaign' in html
    assert "All campaigns" in html


def test_a_role_you_lack_is_named_on_the_403_page(client, expert, campaign):
    client.force_login(expert)
    response = client.get(reverse("import_upload", args=[campaign.pk]))
    assert response.status_code == 403
    assert "Only this campaign&#x27;s owners can open this page." in response.content.decode()


def test_a_campaign_you_are_not_in_is_a_404_page_without_a_link_to_it(
    client, outsider, campaign, debug
):
    client.force_login(outsider)
    response = client.get(reverse("campaign_detail", args=[campaign.pk]))
    html = response.content.decode()
    assert response.status_code == 404
    assert in_layout(html)
    assert "This campaign does not exist, or you are not a member of it." in html
    assert "Test campaign" not in html
    assert "All campaigns" in html


def test_an_unknown_address_is_the_404_page(client, expert):
    client.force_login(expert)
    response = client.get("/no-such-page/")
    html = response.content.decode()
    assert response.status_code == 404
    assert in_layout(html)
    assert "This page does not exist, or you do not have access to it." in html
    assert "tried" not in html  # the resolver's URL patterns are never shown


def test_a_bad_request_is_the_400_page(client, settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    response = client.get("/", headers={"host": "evil.example"})
    assert response.status_code == 400
    html = response.content.decode()
    assert in_layout(html) and "The request could not be understood" in html
    assert "evil.example" not in html


def test_the_500_page_is_in_the_layout_and_needs_no_database():
    request = RequestFactory().get("/campaigns/1/")
    response = errors.server_error(request)
    assert response.status_code == 500
    html = response.content.decode()
    assert in_layout(html) and "Something went wrong on the server" in html


def test_a_csrf_failure_says_to_reload(client, expert):
    client.handler.enforce_csrf_checks = True
    client.force_login(expert)
    response = client.post(reverse("logout"))
    assert response.status_code == 403
    assert "reload the page and try again" in response.content.decode()


def request_log(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "django.request"]


def test_a_403_is_logged_as_one_line_with_its_reason(
    client, expert, campaign, leased_to_expert2, caplog, debug
):
    client.force_login(expert)
    url = reverse("grading_page", args=[campaign.pk, leased_to_expert2.pk])
    with caplog.at_level(logging.WARNING, logger="django.request"):
        client.get(url)
    [record] = request_log(caplog)
    assert record.levelno == logging.WARNING and not record.exc_info
    assert record.getMessage() == f"Forbidden: {url} (This proof is not assigned to you.)"
    assert "\n" not in caplog.text.strip()


def test_a_404_outside_any_view_is_logged_as_one_line(client, expert, caplog):
    client.force_login(expert)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        client.get("/no-such-page/")
    [record] = request_log(caplog)
    assert record.levelno == logging.WARNING and not record.exc_info
    assert record.getMessage().startswith("Not Found: /no-such-page/")
    assert "Traceback" not in caplog.text


def test_a_malformed_upload_is_the_400_page_logged_as_one_line(client, owner, campaign, caplog):
    client.force_login(owner)
    url = reverse("import_upload", args=[campaign.pk])
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.post(url, data=b"x", content_type="multipart/form-data")
    assert response.status_code == 400
    assert in_layout(response.content.decode())
    [record] = request_log(caplog)
    assert not record.exc_info and "Traceback" not in caplog.text
    assert record.getMessage().startswith(f"Bad request (Unable to parse request body): {url} (")
