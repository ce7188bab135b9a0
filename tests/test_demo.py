"""`manage.py load_demo`: the data set behind `make run`."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from annotate.demo import CAMPAIGN_NAME
from annotate.models import Campaign, Membership, Problem, Proof
from tests.import_support import row_counts

pytestmark = pytest.mark.django_db


def run_load_demo(capsys) -> dict[str, str]:
    call_command("load_demo")
    out = capsys.readouterr().out
    return dict(re.findall(r"^  (\w+) / (\S+)$", out, flags=re.MULTILINE))


def test_the_demo_has_84_proofs_in_a_blind_campaign_and_working_logins(capsys):
    logins = run_load_demo(capsys)

    campaign = Campaign.objects.get(name=CAMPAIGN_NAME)
    assert (campaign.kind, campaign.overlap, campaign.blind) == ("grade", 2, True)
    assert campaign.items.count() == 84 == Proof.objects.count()
    assert Problem.objects.count() == 84
    assert sorted(
        Membership.objects.filter(campaign=campaign).values_list("user__username", "role")
    ) == [
        ("grader1", "grader"),
        ("grader2", "grader"),
        ("owner", "owner"),
        ("reviewer", "reviewer"),
    ]
    assert set(logins) == {"owner", "grader1", "grader2", "reviewer"}
    for username, password in logins.items():
        assert authenticate(username=username, password=password) is not None


def test_running_the_demo_again_adds_nothing_and_prints_new_working_logins(capsys):
    first = run_load_demo(capsys)
    before = row_counts()
    second = run_load_demo(capsys)

    assert row_counts() == before
    assert Membership.objects.count() == 4
    assert all(first[name] != second[name] for name in first)
    assert authenticate(username="grader1", password=second["grader1"]) is not None
    assert authenticate(username="grader1", password=first["grader1"]) is None
