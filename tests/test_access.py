"""The access helpers (annotate/access.py): who gets the object, a 404 or a 403."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from annotate import grading
from annotate.access import (
    NO_CAMPAIGN,
    get_campaign_for_member,
    get_import_job,
    get_item_for_member,
    get_work_campaign,
    get_work_item,
    with_staff_roles,
)
from annotate.models import (
    Campaign,
    CampaignItem,
    Draft,
    Grade,
    GradeHistory,
    ImportJob,
    Membership,
    Role,
    Skip,
)
from annotate.work import queue
from proofdesk.asgi import application
from tests.conftest import PASSWORD
from tests.grading_support import submit_data

pytestmark = pytest.mark.django_db

GRADER_ROLES = [Role.GRADER]
MISSING = 999_999


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("ada_admin", password=PASSWORD, is_staff=True)


@pytest.fixture
def item(campaign) -> CampaignItem:
    return campaign.items.get()


@pytest.fixture
def other_item(owner, proof) -> CampaignItem:
    other = Campaign.objects.create(name="Other campaign", created_by=owner)
    return CampaignItem.objects.create(campaign=other, proof=proof)


# --- campaigns -------------------------------------------------------------------------------


def test_a_member_gets_the_campaign_and_their_roles(expert, campaign):
    found, roles = get_campaign_for_member(expert, campaign.pk, GRADER_ROLES)
    assert found == campaign and roles == {Role.GRADER}


def test_a_member_costs_one_query(expert, campaign, django_assert_num_queries):
    with django_assert_num_queries(1):
        get_campaign_for_member(expert, campaign.pk, GRADER_ROLES)


def test_campaigns_are_404_to_anonymous_users_and_outsiders(outsider, campaign):
    for user in (AnonymousUser(), outsider):
        with pytest.raises(Http404):
            get_campaign_for_member(user, campaign.pk)
        with pytest.raises(Http404):
            get_campaign_for_member(user, MISSING)


def test_a_member_without_the_role_is_refused(reviewer, campaign):
    with pytest.raises(PermissionDenied):
        get_campaign_for_member(reviewer, campaign.pk, GRADER_ROLES)


def test_staff_are_owners_of_every_campaign(staff, campaign):
    found, roles = get_campaign_for_member(staff, campaign.pk, [Role.OWNER])
    assert found == campaign and roles == {Role.OWNER}
    with pytest.raises(PermissionDenied):
        get_campaign_for_member(staff, campaign.pk, GRADER_ROLES)


def test_staff_get_404_for_a_missing_campaign(staff):
    for roles in (None, [Role.OWNER], GRADER_ROLES):
        with pytest.raises(Http404):
            get_campaign_for_member(staff, MISSING, roles)


# --- items -----------------------------------------------------------------------------------


def test_a_member_gets_the_item_with_campaign_proof_and_problem(
    expert, item, django_assert_num_queries
):
    with django_assert_num_queries(2):
        found, roles = get_item_for_member(expert, item.campaign_id, item.pk, GRADER_ROLES)
        assert (found.campaign.name, found.proof.problem.external_id) == (
            "Test campaign",
            "PB-Test-001",
        )
    assert found == item and roles == {Role.GRADER}


def test_items_are_404_to_anonymous_users_and_outsiders(outsider, item):
    for user in (AnonymousUser(), outsider):
        with pytest.raises(Http404):
            get_item_for_member(user, item.campaign_id, item.pk)
        with pytest.raises(Http404):
            get_item_for_member(user, MISSING, item.pk)


def test_a_missing_item_or_one_of_another_campaign_is_404(expert, item, other_item):
    for item_id in (MISSING, other_item.pk):
        with pytest.raises(Http404):
            get_item_for_member(expert, item.campaign_id, item_id, GRADER_ROLES)


def test_a_member_without_the_role_is_refused_before_the_item_is_looked_up(reviewer, item):
    for item_id in (item.pk, MISSING):
        with pytest.raises(PermissionDenied):
            get_item_for_member(reviewer, item.campaign_id, item_id, GRADER_ROLES)


def test_staff_are_owners_of_every_item(staff, item):
    found, roles = get_item_for_member(staff, item.campaign_id, item.pk, [Role.OWNER])
    assert found == item and roles == {Role.OWNER}
    with pytest.raises(PermissionDenied):
        get_item_for_member(staff, item.campaign_id, item.pk, GRADER_ROLES)
    with pytest.raises(PermissionDenied):
        get_item_for_member(staff, item.campaign_id, MISSING, GRADER_ROLES)


def test_staff_get_404_for_a_missing_campaign_or_item(staff, item, other_item):
    for roles in (None, [Role.OWNER], GRADER_ROLES):
        with pytest.raises(Http404):
            get_item_for_member(staff, MISSING, item.pk, roles)
    for roles in (None, [Role.OWNER]):
        for item_id in (MISSING, other_item.pk):
            with pytest.raises(Http404):
                get_item_for_member(staff, item.campaign_id, item_id, roles)


def test_a_staff_member_keeps_their_own_roles_too(staff, item):
    item.campaign.memberships.create(user=staff, role=Role.GRADER)
    _, roles = get_item_for_member(staff, item.campaign_id, item.pk, GRADER_ROLES)
    assert roles == {Role.GRADER, Role.OWNER}
    _, roles = get_campaign_for_member(staff, item.campaign_id, GRADER_ROLES)
    assert roles == {Role.GRADER, Role.OWNER}


# --- one rule per action: who gets what, on every page, endpoint and the websocket ----------
#
# The people: an outsider, the grader holding the item's lease (or who made the grade),
# another grader of the campaign, its reviewer, owner and adjudicator, and staff (no
# membership). Each action is tried by each of them on a fresh database.

PEOPLE = ["anonymous", "outsider", "grader", "other_grader", "reviewer", "owner", "judge", "staff"]


@pytest.fixture
def judge(django_user_model, campaign):
    user = django_user_model.objects.create_user("ada_adjudicator", password=PASSWORD)
    Membership.objects.create(campaign=campaign, user=user, role=Role.ADJUDICATOR)
    return user


@pytest.fixture
def people(expert, expert2, reviewer, owner, outsider, judge, staff) -> dict:
    return {
        "anonymous": None,
        "outsider": outsider,
        "grader": expert,
        "other_grader": expert2,
        "reviewer": reviewer,
        "owner": owner,
        "judge": judge,
        "staff": staff,
    }


@pytest.fixture
def leased(item, expert) -> CampaignItem:
    """The campaign's item, leased to the grader."""
    claimed = queue.claim_next_item(item.campaign, expert)
    assert claimed.pk == item.pk
    return claimed


def grade_of(item: CampaignItem, grader) -> Grade:
    if item.lease_holder_id != grader.pk:
        assert queue.claim_next_item(item.campaign, grader).pk == item.pk
    grade, _ = grading.submit_grade(
        item, grader, score="1", comment="", issues=[], active_seconds=5,
        submission_key=uuid.uuid4(),
    )  # fmt: skip
    return grade


def page(name: str, item: CampaignItem) -> str:
    return reverse(name, args=[item.campaign_id, item.pk])


def api(item: CampaignItem, suffix: str = "") -> str:
    return f"/api/campaigns/{item.campaign_id}/items/{item.pk}/{suffix}"


def as_person(client, people: dict, who: str):
    if people[who] is not None:
        client.force_login(people[who])
    return client


def test_pages_send_anonymous_users_to_the_login_page(client, leased):
    for name in ("grading_page", "item_detail"):
        response = client.get(page(name, leased))
        assert response.url.startswith(reverse("login"))
    for name in ("grading_draft", "grading_submit", "grading_skip", "grading_lease"):
        response = client.post(page(name, leased), submit_data(reason=Skip.Reason.TOO_LONG))
        assert response.url.startswith(reverse("login"))


LOGIN = 302  # pages send anonymous users to the login page
API_ANONYMOUS = 403  # DRF with session authentication: not authenticated is a 403

# Work on the item the grader holds: only they may; the other members are refused (403),
# outsiders do not learn the campaign exists (404).
WORK = {"anonymous": LOGIN, "outsider": 404, "grader": 200, "other_grader": 403,
        "reviewer": 403, "owner": 403, "judge": 403, "staff": 403}  # fmt: skip


def expect(base: dict, **changes: int) -> list[tuple[str, int]]:
    return list({**base, **changes}.items())


@pytest.mark.parametrize("who, status", expect(WORK))
def test_grading_page(client, people, leased, who, status):
    assert as_person(client, people, who).get(page("grading_page", leased)).status_code == status


@pytest.mark.parametrize("who, status", expect(WORK))
def test_autosave(client, people, leased, who, status):
    response = as_person(client, people, who).post(page("grading_draft", leased), {"score": "1"})
    assert response.status_code == status
    assert Draft.objects.exists() is (who == "grader")


@pytest.mark.parametrize("who, status", expect(WORK, grader=302))
def test_submit(client, people, leased, who, status):
    response = as_person(client, people, who).post(page("grading_submit", leased), submit_data())
    assert response.status_code == status
    assert Grade.objects.exists() is (who == "grader")


@pytest.mark.parametrize("who, status", expect(WORK, grader=302))
def test_skip_page(client, people, leased, who, status):
    response = as_person(client, people, who).post(
        page("grading_skip", leased), {"reason": Skip.Reason.TOO_LONG}
    )
    assert response.status_code == status
    assert Skip.objects.exists() is (who == "grader")


@pytest.mark.parametrize("who, status", expect(WORK, anonymous=API_ANONYMOUS, grader=201))
def test_skip_api(client, people, leased, who, status):
    response = as_person(client, people, who).post(
        api(leased, "skip/"), {"reason": Skip.Reason.TOO_LONG}, content_type="application/json"
    )
    assert response.status_code == status
    assert Skip.objects.exists() is (who == "grader")


# The heartbeat: every grader (who lost the lease gets the banner, not a 403).
@pytest.mark.parametrize("who, status", expect(WORK, other_grader=200))
def test_lease_heartbeat_page(client, people, leased, who, status):
    response = as_person(client, people, who).post(page("grading_lease", leased))
    assert response.status_code == status
    if who == "other_grader":
        assert "lease" in response.content.decode()
    leased.refresh_from_db()
    assert leased.lease_holder == people["grader"]


@pytest.mark.parametrize("who, status", expect(WORK, anonymous=API_ANONYMOUS, other_grader=409))
def test_lease_heartbeat_api(client, people, leased, who, status):
    response = as_person(client, people, who).post(api(leased, "lease/"))
    assert response.status_code == status


# A grade and its history: its grader, the campaign's owners and adjudicators, staff; to
# anyone else it does not exist.
HISTORY = {"anonymous": LOGIN, "outsider": 404, "grader": 200, "other_grader": 404,
           "reviewer": 404, "owner": 200, "judge": 200, "staff": 200}  # fmt: skip


@pytest.mark.parametrize("who, status", expect(HISTORY))
def test_grade_history_page(client, people, item, expert, who, status):
    grade = grade_of(item, expert)
    path = reverse("grade_history", args=[item.campaign_id, grade.pk])
    response = as_person(client, people, who).get(path)
    assert response.status_code == status
    if status == 200:
        assert response.context["history"][0]["row"].version == 1


@pytest.mark.parametrize("who, status", expect(HISTORY, anonymous=API_ANONYMOUS))
def test_grade_history_api(client, people, item, expert, who, status):
    grade = grade_of(item, expert)
    response = as_person(client, people, who).get(f"/api/grades/{grade.pk}/history/")
    assert response.status_code == status
    if status == 200:
        assert [h["version"] for h in response.json()["history"]] == [1]


# Reading an item: every member, and staff.
VIEW = {"anonymous": LOGIN, "outsider": 404, "grader": 200, "other_grader": 200,
        "reviewer": 200, "owner": 200, "judge": 200, "staff": 200}  # fmt: skip


@pytest.mark.parametrize("who, status", expect(VIEW))
def test_item_page(client, people, leased, who, status):
    assert as_person(client, people, who).get(page("item_detail", leased)).status_code == status


@pytest.mark.parametrize("who, status", expect(VIEW, anonymous=API_ANONYMOUS))
def test_item_api(client, people, leased, who, status):
    assert as_person(client, people, who).get(api(leased)).status_code == status


# Import jobs: the campaign's owners (and staff).
IMPORTS = {"anonymous": LOGIN, "outsider": 404, "grader": 403, "other_grader": 403,
           "reviewer": 403, "owner": 200, "judge": 403, "staff": 200}  # fmt: skip


@pytest.mark.parametrize("who, status", expect(IMPORTS))
def test_import_job_page(client, people, campaign, owner, who, status, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    job = ImportJob.objects.create(
        campaign=campaign, uploaded_by=owner, format="native", original_name="a.jsonl"
    )
    path = reverse("import_job", args=[campaign.pk, job.pk])
    assert as_person(client, people, who).get(path).status_code == status


# The live progress websocket: every member and staff; nobody else gets the handshake.
LIVE = {who: who not in ("anonymous", "outsider") for who in PEOPLE}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("who, accepted", list(LIVE.items()))
def test_websocket_connect(people, campaign, who, accepted):
    headers = [(b"origin", b"http://localhost")]
    if people[who] is not None:
        client = Client()
        client.force_login(people[who])
        cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
        headers.append((b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={cookie}".encode()))

    async def scenario():
        ws = WebsocketCommunicator(application, f"/ws/campaigns/{campaign.pk}/", headers=headers)
        result = await ws.connect(timeout=3)
        await ws.disconnect()
        return result

    assert async_to_sync(scenario)() == ((True, None) if accepted else (False, 4403))


# --- the bugs one rule per action fixed ------------------------------------------------------


def test_the_api_refuses_to_skip_a_proof_already_graded_like_the_page(client, expert, leased):
    grade_of(leased, expert)
    client.force_login(expert)
    response = client.post(
        api(leased, "skip/"), {"reason": Skip.Reason.TOO_LONG}, content_type="application/json"
    )
    assert response.status_code == 403
    assert response.json()["detail"] == "You already graded this proof; it cannot be skipped."
    page_response = client.post(page("grading_skip", leased), {"reason": Skip.Reason.TOO_LONG})
    assert page_response.status_code == 403
    assert not Skip.objects.exists()


def test_the_api_refuses_to_skip_an_item_not_assigned(client, expert2, leased):
    client.force_login(expert2)
    response = client.post(
        api(leased, "skip/"), {"reason": Skip.Reason.TOO_LONG}, content_type="application/json"
    )
    assert response.status_code == 403
    assert response.json()["detail"] == "This proof is not assigned to you."
    assert not Skip.objects.exists()


def test_a_grader_reads_the_history_of_their_own_grade_page_and_api(client, expert, item):
    grade = grade_of(item, expert)
    grading.edit_grade(
        grade, expert, expected_version=1, score="0", comment="second thoughts", issues=[]
    )
    client.force_login(expert)
    html = client.get(reverse("grade_history", args=[item.campaign_id, grade.pk]))
    assert html.status_code == 200 and "second thoughts" in html.content.decode()
    body = client.get(f"/api/grades/{grade.pk}/history/").json()
    assert [h["version"] for h in body["history"]] == [1, 2]


def test_the_history_page_finds_the_grade_only_through_its_campaign(
    client, owner, expert, item, other_item
):
    grade = grade_of(item, expert)
    Membership.objects.create(campaign=other_item.campaign, user=owner, role=Role.OWNER)
    client.force_login(owner)
    path = reverse("grade_history", args=[other_item.campaign_id, grade.pk])
    assert client.get(path).status_code == 404


def test_an_import_job_is_found_through_the_access_helper(campaign, owner, expert, outsider):
    job = ImportJob.objects.create(
        campaign=campaign, uploaded_by=owner, format="native", original_name="a.jsonl"
    )
    found, found_campaign = get_import_job(owner, campaign.pk, job.pk)
    assert (found, found_campaign) == (job, campaign)
    with pytest.raises(PermissionDenied):
        get_import_job(expert, campaign.pk, job.pk)
    for user, campaign_id, job_id in [
        (outsider, campaign.pk, job.pk),
        (AnonymousUser(), campaign.pk, job.pk),
        (owner, campaign.pk, MISSING),
    ]:
        with pytest.raises(Http404):
            get_import_job(user, campaign_id, job_id)
    other = Campaign.objects.create(name="Other", created_by=owner)
    Membership.objects.create(campaign=other, user=owner, role=Role.OWNER)
    with pytest.raises(Http404, match="not part of the campaign"):
        get_import_job(owner, other.pk, job.pk)


def test_the_job_page_answers_what_the_access_helper_decides(client, campaign, owner, monkeypatch):
    """The page has no rule of its own: refused by `get_import_job`, refused on the page."""
    job = ImportJob.objects.create(
        campaign=campaign, uploaded_by=owner, format="native", original_name="a.jsonl"
    )

    def refuse(user, campaign_id, job_id):
        raise PermissionDenied("Refused by annotate.access.")

    monkeypatch.setattr("annotate.views.imports.get_import_job", refuse)
    client.force_login(owner)
    response = client.get(reverse("import_job", args=[campaign.pk, job.pk]))
    assert response.status_code == 403
    assert "Refused by annotate.access." in response.content.decode()


# --- get_work_item, get_work_campaign: the rule of every kind of work ------------------------


@pytest.fixture
def review_item(owner, expert, reviewer, proof) -> CampaignItem:
    """An item of a review campaign (an analysis of the proof) where `expert` is a grader
    and `reviewer` a reviewer."""
    from verification.models import Analysis

    review = Campaign.objects.create(
        name="Review campaign", kind=Campaign.Kind.REVIEW_ANALYSES, created_by=owner
    )
    for user, role in [(owner, Role.OWNER), (expert, Role.GRADER), (reviewer, Role.REVIEWER)]:
        Membership.objects.create(campaign=review, user=user, role=role)
    analysis = Analysis.objects.create(proof=proof, text="Fine. \\boxed{1}", text_hash="a" * 64)
    return CampaignItem.objects.create(campaign=review, proof=proof, analysis=analysis)


def test_the_lease_holder_gets_the_item_and_no_work_yet(expert, leased):
    found, own, roles = get_work_item(expert, leased.campaign_id, leased.pk)
    assert (found, own, roles) == (leased, None, {Role.GRADER})


def test_a_grader_with_work_on_the_item_gets_it_with_its_issues(
    expert, item, django_assert_num_queries
):
    grade = grade_of(item, expert)
    with django_assert_num_queries(4):  # roles, item, grade, its issues
        _, own, _ = get_work_item(expert, item.campaign_id, item.pk, Campaign.Kind.GRADE_PROOFS)
        assert own == grade and list(own.issues.all()) == []


def test_a_grader_whose_lease_was_taken_keeps_the_item_through_their_draft(expert, expert2, leased):
    grading.save_draft(leased, expert, score="1", comment="", issues=[], active_seconds=1)
    CampaignItem.objects.filter(pk=leased.pk).update(lease_holder=expert2)
    found, own, _ = get_work_item(expert, leased.campaign_id, leased.pk)
    assert (found, own) == (leased, None)
    # The new holder too; nobody else.
    assert get_work_item(expert2, leased.campaign_id, leased.pk)[0] == leased


def test_any_other_grader_is_refused(expert2, leased):
    with pytest.raises(PermissionDenied, match="This proof is not assigned to you."):
        get_work_item(expert2, leased.campaign_id, leased.pk)


def test_outsiders_and_anonymous_users_get_the_same_404_for_a_missing_campaign(outsider, leased):
    messages = set()
    for user in (AnonymousUser(), outsider):
        for campaign_id in (leased.campaign_id, MISSING):
            with pytest.raises(Http404) as caught:
                get_work_item(user, campaign_id, leased.pk)
            messages.add(str(caught.value))
    assert messages == {NO_CAMPAIGN}


def test_the_fast_path_skips_the_holders_own_work(expert, leased, django_assert_num_queries):
    with django_assert_num_queries(2):  # roles, item
        _, own, _ = get_work_item(expert, leased.campaign_id, leased.pk, read_holder_work=False)
    assert own is None


def test_the_fast_path_is_only_for_the_holder(expert2, leased):
    with pytest.raises(PermissionDenied):
        get_work_item(expert2, leased.campaign_id, leased.pk, read_holder_work=False)


def test_the_campaign_kind_must_be_the_one_asked_for(expert, reviewer, leased, review_item):
    with pytest.raises(Http404, match="This campaign does not review analyses."):
        get_work_item(expert, leased.campaign_id, leased.pk, Campaign.Kind.REVIEW_ANALYSES)
    with pytest.raises(Http404, match="This campaign does not grade proofs."):
        get_work_item(expert, review_item.campaign_id, review_item.pk, Campaign.Kind.GRADE_PROOFS)
    with pytest.raises(Http404, match="This campaign does not grade proofs."):
        get_work_campaign(reviewer, review_item.campaign_id, Campaign.Kind.GRADE_PROOFS)


def test_the_grading_pages_and_api_refuse_a_review_campaign(client, expert, review_item):
    CampaignItem.objects.filter(pk=review_item.pk).update(
        lease_holder=expert, lease_expires_at=timezone.now() + timedelta(minutes=5)
    )
    client.force_login(expert)
    for path in (
        reverse("grading_queue", args=[review_item.campaign_id]),
        page("grading_page", review_item),
        api(review_item),
    ):
        response = client.get(path)
        assert response.status_code == 404, path
    html = client.get(page("grading_page", review_item)).content.decode()
    assert "This campaign does not grade proofs." in html


def test_review_needs_the_reviewer_role_and_the_item(expert, reviewer, review_item):
    review = Campaign.Kind.REVIEW_ANALYSES
    campaign_id = review_item.campaign_id
    with pytest.raises(PermissionDenied, match="reviewers"):
        get_work_item(expert, campaign_id, review_item.pk, review)
    with pytest.raises(PermissionDenied, match="This item is not assigned to you."):
        get_work_item(reviewer, campaign_id, review_item.pk, review)
    Draft.objects.create(item=review_item, expert=reviewer)
    found, own, roles = get_work_item(reviewer, campaign_id, review_item.pk, review)
    assert (found.analysis, own, roles) == (review_item.analysis, None, {Role.REVIEWER})
    campaign, roles = get_work_campaign(reviewer, campaign_id, review)
    assert campaign == review_item.campaign


def test_the_kinds_role_is_needed_for_the_queue(expert, owner, staff, campaign):
    grade = Campaign.Kind.GRADE_PROOFS
    assert get_work_campaign(expert, campaign.pk, grade) == (campaign, {Role.GRADER})
    for user in (owner, staff):
        with pytest.raises(PermissionDenied, match="graders"):
            get_work_campaign(user, campaign.pk, grade)


def test_staff_are_owners_in_one_place(staff, expert):
    assert with_staff_roles(staff, [Role.GRADER]) == {Role.GRADER, Role.OWNER}
    assert with_staff_roles(expert, [Role.GRADER]) == {Role.GRADER}


# --- the admin: committed work is read-only ---------------------------------------------------


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("sam_super", password=PASSWORD)


def test_the_admin_cannot_change_a_grades_score(client, superuser, expert, item):
    grade = grade_of(item, expert)
    client.force_login(superuser)
    change = reverse("admin:annotate_grade_change", args=[grade.pk])
    assert client.get(change).status_code == 200  # shown, read-only
    response = client.post(
        change,
        {"proof": grade.proof_id, "origin": "app", "score": "0", "comment": "edited", "version": 1},
    )
    assert response.status_code == 403
    grade.refresh_from_db()
    assert (grade.score, grade.comment, grade.version) == (1, "", 1)
    assert GradeHistory.objects.filter(grade=grade).count() == 1
    assert client.get(reverse("admin:annotate_grade_add")).status_code == 403
    assert (
        client.post(
            reverse("admin:annotate_grade_delete", args=[grade.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert Grade.objects.filter(pk=grade.pk).exists()


@pytest.mark.parametrize(
    "model", ["grade", "gradehistory", "review", "reviewhistory", "claimverdict"]
)
def test_committed_work_and_its_history_are_read_only_in_the_admin(model):
    from django.contrib import admin
    from django.test import RequestFactory

    from annotate import models

    model_admin = next(a for m, a in admin.site._registry.items() if m._meta.model_name == model)
    request = RequestFactory().get("/")
    request.user = type("Super", (), {"is_active": True, "is_staff": True, "is_superuser": True})()
    assert model_admin.model in vars(models).values()
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)


@pytest.fixture
def adjudication_item(owner, judge, expert, proof) -> CampaignItem:
    """An item of an adjudication campaign leased to `judge`, its adjudicator; `expert` is
    a member with the grader role there too."""
    adj = Campaign.objects.create(
        name="Adjudication campaign", kind=Campaign.Kind.ADJUDICATE, created_by=owner
    )
    for user, role in [(owner, Role.OWNER), (judge, Role.ADJUDICATOR), (expert, Role.GRADER)]:
        Membership.objects.create(campaign=adj, user=user, role=role)
    return CampaignItem.objects.create(
        campaign=adj,
        proof=proof,
        lease_holder=judge,
        lease_expires_at=timezone.now() + timedelta(minutes=5),
    )


def _grading_api_calls(client, item: CampaignItem) -> dict[str, int]:
    """Every grading API call on the item's campaign, by name, with the status it got."""
    body = {"score": "1", "comment": "", "issues": [], "submission_key": str(uuid.uuid4())}
    return {
        "claim": client.post(f"/api/campaigns/{item.campaign_id}/claim/").status_code,
        "item": client.get(api(item)).status_code,
        "draft": client.put(api(item, "draft/"), body, content_type="application/json").status_code,
        "grade": client.post(
            api(item, "grade/"), body, content_type="application/json"
        ).status_code,
        "skip": client.post(
            api(item, "skip/"), {"reason": "unsure"}, content_type="application/json"
        ).status_code,
    }


@pytest.mark.parametrize("who", ["judge", "expert", "owner", "outsider"])
def test_the_grading_api_refuses_an_adjudication_campaign_and_writes_nothing(
    client, request, who, adjudication_item
):
    from annotate.models import Adjudication, Draft, Grade, Skip

    client.force_login(request.getfixturevalue(who))
    statuses = _grading_api_calls(client, adjudication_item)
    # Members learn the campaign is not a grading one (404 with that reason); outsiders do
    # not learn it exists. Nobody gets a 2xx.
    assert set(statuses.values()) == {404}, statuses
    assert not Grade.objects.filter(proof=adjudication_item.proof).exists()
    assert not Draft.objects.filter(item=adjudication_item).exists()
    assert not Skip.objects.filter(item=adjudication_item).exists()
    assert not Adjudication.objects.exists()
    if who != "outsider":
        body = client.get(api(adjudication_item)).json()
        assert "does not grade proofs" in str(body), body
