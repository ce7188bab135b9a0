"""Access helpers: the one place that decides who may do what, used by every page, API
endpoint and websocket consumer alike.

Each returns the object or raises Http404 (the object does not exist or the user may not
know it exists) or PermissionDenied (a member without the needed role). Their messages are
sentences the error pages show (annotate/views/errors.py): they never say more than the
user may know, so a 404 reads the same for "missing" and "not yours". Staff count as owners
of every campaign (`with_staff_roles`, the one place that is written).

One helper per action:

- a campaign's pages and its live progress (websocket): `get_campaign_for_member`, its
  members (with the roles a page asks for);
- a kind's queue, "next" and "my work" pages: `get_work_campaign`, the kind's experts;
- the work page, submit, autosave: `get_work_item`, the kind's expert who holds the item's
  lease, has a draft of it or has committed work on it (adjudication:
  `get_adjudication_item`, and not an adjudicator who graded the proof);
- skip: `get_skippable_item`, as `get_work_item`, but not once their work is in;
- the lease heartbeat, the API's draft and submit: `get_expert_item`, the kind's experts
  (the domain refuses an item that is not theirs with 409, under its lock);
- reading an item (the item page, the API's item): `get_item_to_view`, every member (the
  blind rules, annotate/work/visibility.py, say what of others' work they see);
- a grade or review and its history: `get_grade_for_member`, `get_committed_work`, its
  expert and the campaign's owners and adjudicators; editing a grade: `get_grade_to_edit`,
  its grader;
- import jobs: `get_import_job`, the campaign's owners.
- model runs (workers/): launching on a target, `require_run_launcher`, staff and the
  target campaign's owners; a run's page, live channel, cancel and resume, `get_model_run`
  (`runs_for` lists them), staff and the owners of its target campaign.
- disagreements (verification/): `disagreements_for`, staff every one, an owner those about
  proofs of the campaigns they own.

"The kind's experts" are members with the role of the campaign's kind of work
(`WorkKind.expert_role`: graders grade, reviewers review); a helper given a `kind` answers
404 for a campaign of another kind ("This campaign does not grade proofs.").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest

from annotate.models import Campaign, CampaignItem, Draft, Grade, ImportJob, Membership, Role
from annotate.work.kinds import WorkKind, kind_of

# Who a helper is asked about: `request.user` (or a consumer's scope user), signed in or not.
AnyUser = User | AnonymousUser

NO_CAMPAIGN = "This campaign does not exist, or you are not a member of it."
NO_ITEM = "This item is not part of the campaign."
NO_GRADE = "This grade does not exist, or it is not yours to see."
NOT_ASSIGNED_ITEM = "This item is not assigned to you."
NOT_ASSIGNED: dict[str, str] = {
    Campaign.Kind.GRADE_PROOFS: "This proof is not assigned to you.",
    Campaign.Kind.ADJUDICATE: "This proof is not assigned to you.",
}

ALREADY_DONE_ITEM = "You already worked on this item; it cannot be skipped."
ALREADY_DONE: dict[str, str] = {
    Campaign.Kind.GRADE_PROOFS: "You already graded this proof; it cannot be skipped.",
    Campaign.Kind.REVIEW_ANALYSES: "You already reviewed this analysis; it cannot be skipped.",
    Campaign.Kind.ADJUDICATE: "You already adjudicated this proof; it cannot be skipped.",
}
IMPORT_ROLES = [Role.OWNER]

# Roles that see every expert's committed work in a campaign (and its history).
SEE_ALL_WORK = {Role.OWNER, Role.ADJUDICATOR}
# What the work page shows of the expert's own committed work, read with it.
OWN_WORK_PREFETCH: dict[str, tuple[str, ...]] = {
    Campaign.Kind.GRADE_PROOFS: ("issues",),
    Campaign.Kind.REVIEW_ANALYSES: ("verdicts",),
}
# What the page of a piece of committed work shows with it.
WORK_RELATED: dict[str, tuple[str, ...]] = {
    Campaign.Kind.GRADE_PROOFS: ("proof__problem", "grader"),
    Campaign.Kind.REVIEW_ANALYSES: ("item__proof__problem", "analysis", "reviewer"),
    Campaign.Kind.ADJUDICATE: ("proof__problem", "adjudicator"),
}


def signed_in_user(request: HttpRequest) -> User:
    """The signed-in user of a view behind `login_required`, typed as the domain takes it
    (`request.user` is typed as either a user or the anonymous one)."""
    user = request.user
    if not user.is_authenticated:  # not reached behind `login_required`
        raise PermissionDenied("Sign in to open this page.")
    return user


def _role_needed(roles: Iterable[str]) -> PermissionDenied:
    names = sorted(Role(role).label.lower() + "s" for role in roles)
    who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return PermissionDenied(f"Only this campaign's {who} can open this page.")


def roles_in(user: AnyUser, campaign: Campaign | int) -> set[str]:
    """The user's roles in the campaign; staff count as owners of every campaign."""
    if not user.is_authenticated:
        return set()
    return with_staff_roles(user, Membership.objects.roles_of(user, campaign))


def with_staff_roles(user: AnyUser, member_roles: Iterable[str]) -> set[str]:
    """The roles a user has from their memberships `member_roles`: staff count as owners of
    every campaign (the one place that rule is written; `roles_in` reads the memberships,
    callers that read them with something else pass them here)."""
    roles = set(member_roles)
    if user.is_staff:
        roles.add(Role.OWNER)
    return roles


def campaigns_for(user: AnyUser) -> Iterable[Campaign]:
    if not user.is_authenticated:
        return Campaign.objects.none()
    if user.is_staff:
        return Campaign.objects.all()
    return Campaign.objects.filter(memberships__user=user).distinct()


def get_campaign_for_member(
    user: AnyUser, campaign_id: int, roles: Iterable[str] | None = None
) -> tuple[Campaign, set[str]]:
    """Return (campaign, the user's roles in it).

    Outsiders get 404, so campaign ids are not an oracle. Members lacking every role in
    `roles` get PermissionDenied. Staff are treated as owners.
    """
    if not user.is_authenticated:
        raise Http404(NO_CAMPAIGN)
    # One query for a member: their memberships, each carrying the campaign.
    memberships = list(
        Membership.objects.filter(user=user, campaign_id=campaign_id).select_related("campaign")
    )
    user_roles = with_staff_roles(user, (m.role for m in memberships))
    if memberships:
        campaign = memberships[0].campaign
    elif user_roles:
        # Staff without a membership: the campaign still has to exist.
        try:
            campaign = Campaign.objects.get(pk=campaign_id)
        except Campaign.DoesNotExist:
            raise Http404(NO_CAMPAIGN) from None
    else:
        raise Http404(NO_CAMPAIGN)
    if roles is not None and not user_roles.intersection(roles):
        raise _role_needed(roles)
    return campaign, user_roles


def get_item_for_member(
    user: AnyUser, campaign_id: int, item_id: int, roles: Iterable[str] | None = None
) -> tuple[CampaignItem, set[str]]:
    """Return (item with its campaign, proof and problem, the user's roles in the campaign).

    Same rules as `get_campaign_for_member`, checked in the same order, in two queries: the
    roles, then the item with its campaign.
    """
    user_roles = roles_in(user, campaign_id)
    if not user_roles:
        raise Http404(NO_CAMPAIGN)
    if roles is not None and not user_roles.intersection(roles):
        # Staff are owners of every campaign, even a missing one: they must not learn from
        # a 403 that a missing campaign exists.
        if not Campaign.objects.filter(pk=campaign_id).exists():
            raise Http404(NO_CAMPAIGN)
        raise _role_needed(roles)
    return _item(campaign_id, item_id), user_roles


def _item(campaign_id: int, item_id: int) -> CampaignItem:
    try:
        return CampaignItem.objects.select_related("campaign", "proof__problem", "analysis").get(
            pk=item_id, campaign_id=campaign_id
        )
    except CampaignItem.DoesNotExist:
        raise Http404(NO_ITEM) from None


def get_grade_for_member(
    user: AnyUser, grade_id: int, roles: Iterable[str] | None = None
) -> tuple[Grade, set[str]]:
    """Return (a grade made in Proofdesk, the user's roles in its campaign).

    Visible to its grader and to the campaign's owners and adjudicators; to anyone else it
    does not exist (404), so blind campaigns cannot be read grade by grade. `roles` as in
    `get_campaign_for_member`; the grade's own grader passes without them.
    """
    if not user.is_authenticated:
        raise Http404(NO_GRADE)
    try:
        grade = Grade.objects.select_related("campaign", "proof__problem", "grader").get(
            pk=grade_id, origin=Grade.Origin.APP
        )
    except Grade.DoesNotExist:
        raise Http404(NO_GRADE) from None
    # A grade made in Proofdesk always has its campaign.
    user_roles = roles_in(user, cast(Campaign, grade.campaign))
    if not _may_see_work(user, user_roles, grade.grader_id, Role.GRADER):
        raise Http404(NO_GRADE)
    if roles is not None and not user_roles.intersection(roles):
        raise _role_needed(roles)
    return grade, user_roles


def _may_see_work(user: AnyUser, roles: set[str], expert_id: int | None, expert_role: str) -> bool:
    """Committed work is seen by its expert (still one of the campaign's) and by the
    campaign's owners and adjudicators; to anyone else it does not exist."""
    if expert_id == user.pk and expert_role in roles:
        return True
    return bool(roles & SEE_ALL_WORK)


# --- expert work (annotate/work/): the queue, the work page, its endpoints -------------------


def _work_kind(campaign: Campaign, kind: str | None) -> WorkKind[Any, Any]:
    """The campaign's work kind, which must be `kind` when one is named (else 404)."""
    if kind is not None and campaign.kind != kind:
        raise Http404(f"This campaign does not {Campaign.Kind(kind).label.lower()}.")
    try:
        return kind_of(campaign)
    except KeyError:
        raise Http404("This campaign has no expert work of its kind yet.") from None


def _require_role(roles: set[str], role: str) -> None:
    if role not in roles:
        raise _role_needed([role])


def get_work_campaign(user: AnyUser, campaign_id: int, kind: str) -> tuple[Campaign, set[str]]:
    """Return (campaign, the user's roles) for the queue, "next" and "my work" pages of a
    kind of work: a member (else 404) of a campaign doing that kind of work (else 404) with
    the kind's role (`WorkKind.expert_role`, else PermissionDenied)."""
    campaign, roles = get_campaign_for_member(user, campaign_id)
    _require_role(roles, _work_kind(campaign, kind).expert_role)
    return campaign, roles


def get_expert_item(
    user: AnyUser, campaign_id: int, item_id: int, kind: str | None = None
) -> tuple[CampaignItem, set[str]]:
    """Return (item, roles) for an expert of the item's kind of work, whether or not they
    may work on it now: the lease heartbeat (a lost lease is an answer, not a 403) and the
    API's draft and submit, whose domain functions refuse an item that is not the expert's
    with `NotClaimed` (409) under the item's lock.

    A member (else 404) with the kind's role (else PermissionDenied); `kind` as in
    `get_work_item`.
    """
    if not user.is_authenticated:
        raise Http404(NO_CAMPAIGN)
    roles = roles_in(user, campaign_id)
    if not roles:
        raise Http404(NO_CAMPAIGN)
    item = _item(campaign_id, item_id)
    _require_role(roles, _work_kind(item.campaign, kind).expert_role)
    return item, roles


def get_work_item(
    user: AnyUser,
    campaign_id: int,
    item_id: int,
    kind: str | None = None,
    *,
    read_holder_work: bool = True,
) -> tuple[CampaignItem, Any | None, set[str]]:
    """Return (item, the user's own committed work on it or None, the user's roles) for the
    page an expert works on an item with, and its endpoints.

    1. Not signed in, or not a member: 404 (the same whether the campaign is missing or not
       theirs). An item not of this campaign: 404.
    2. `kind` (a `Campaign.Kind`), when given, must be the campaign's: else 404 ("This
       campaign does not grade proofs.").
    3. The user needs the kind's role (`WorkKind.expert_role`): else PermissionDenied.
    4. They may open the item only while they hold its lease (expired or not: nobody took
       it since), have a draft of it (their lease lapsed and was taken; the domain still
       accepts their work), or have committed work on it (to read or edit it): else
       PermissionDenied.

    The own work comes with what its page shows (a grade's issues, a review's verdicts).
    `read_holder_work=False` skips reading it for the lease holder (None comes back): for
    autosave, the most frequent request, whose domain function checks under the item's
    lock that the holder has not committed work on it.
    """
    item, roles = get_expert_item(user, campaign_id, item_id, kind)
    if not user.is_authenticated:  # refused by `get_expert_item` (for the type checker)
        raise Http404(NO_CAMPAIGN)
    holder = item.lease_holder_id == user.pk
    if holder and not read_holder_work:
        return item, None, roles
    work = kind_of(item.campaign)
    own = (
        work.own_records(item, user)
        .prefetch_related(*OWN_WORK_PREFETCH.get(work.campaign_kind, ()))
        .first()
    )
    if own is None and not holder and not Draft.objects.filter(item=item, expert=user).exists():
        raise PermissionDenied(NOT_ASSIGNED.get(work.campaign_kind, NOT_ASSIGNED_ITEM))
    return item, own, roles


def get_adjudication_item(
    user: AnyUser, campaign_id: int, item_id: int, *, read_holder_work: bool = True
) -> tuple[CampaignItem, Any | None, set[str]]:
    """`get_work_item` for an adjudication campaign, and not for an adjudicator who graded
    the proof, in any campaign (PermissionDenied, saying so): the adjudication page and its
    endpoints."""
    from annotate.adjudication import refuse_own_grade

    # First, so that the refusal says why (not "not assigned to you"): two queries more.
    item, _ = get_expert_item(user, campaign_id, item_id, Campaign.Kind.ADJUDICATE)
    if not user.is_authenticated:  # refused by `get_expert_item` (for the type checker)
        raise Http404(NO_CAMPAIGN)
    refuse_own_grade(item, user)
    return get_work_item(
        user, campaign_id, item_id, Campaign.Kind.ADJUDICATE, read_holder_work=read_holder_work
    )


def get_skippable_item(
    user: AnyUser, campaign_id: int, item_id: int, kind: str | None = None
) -> tuple[CampaignItem, set[str]]:
    """Return (item, roles) for skipping it, page and API alike: the rule of
    `get_work_item`, and not an item the user already committed work on (PermissionDenied:
    a skip would hide their work from the queue's count of it)."""
    item, own, roles = get_work_item(user, campaign_id, item_id, kind)
    if own is not None:
        raise PermissionDenied(ALREADY_DONE.get(item.campaign.kind, ALREADY_DONE_ITEM))
    return item, roles


def get_item_to_view(
    user: AnyUser, campaign_id: int, item_id: int, kind: str | None = None
) -> tuple[CampaignItem, set[str]]:
    """Return (item, roles) for reading an item (the item page, the API's item): every
    member of the campaign (else 404); what of other experts' work they see is for the blind
    rules (`annotate.work.visibility`) to say. `kind` as in `get_work_item`."""
    item, roles = get_item_for_member(user, campaign_id, item_id)
    if kind is not None:
        _work_kind(item.campaign, kind)
    return item, roles


def get_committed_work(
    user: AnyUser, campaign_id: int, work_id: int, kind: str
) -> tuple[Any, set[str]]:
    """Return (a piece of committed work of the campaign: a grade, a review; the user's
    roles) for its page and its history: its expert and the campaign's owners and
    adjudicators see it; to any other member it does not exist (404), like work of another
    campaign."""
    campaign, roles = get_campaign_for_member(user, campaign_id)
    work = _work_kind(campaign, kind)
    related = WORK_RELATED.get(work.campaign_kind, ())
    found = work.model.objects.select_related(*related).filter(pk=work_id, campaign=campaign)
    record = found.first()
    if record is not None:
        record.campaign = campaign  # read already, with the roles
    if record is None or not _may_see_work(user, roles, work.expert_id(record), work.expert_role):
        raise Http404(f"This {work.noun} is not part of the campaign, or it is not yours to see.")
    return record, roles


def get_grade_to_edit(user: AnyUser, grade_id: int) -> tuple[Grade, set[str]]:
    """Return (grade, roles) for an edit: only its grader (PermissionDenied for the others
    who may read it; 404 for everyone else, as `get_grade_for_member`)."""
    grade, roles = get_grade_for_member(user, grade_id)
    if grade.grader_id != user.pk:
        raise PermissionDenied("Only the grader can edit a grade.")
    return grade, roles


# --- imports ----------------------------------------------------------------------------------


def get_import_job(user: AnyUser, campaign_id: int, job_id: int) -> tuple[ImportJob, Campaign]:
    """Return (an import job of the campaign with its uploader, the campaign): the campaign's
    owners only (PermissionDenied for other members, 404 for outsiders and for a job of
    another campaign)."""
    campaign, _ = get_campaign_for_member(user, campaign_id, IMPORT_ROLES)
    try:
        job = campaign.import_jobs.select_related("uploaded_by").get(pk=job_id)
    except ImportJob.DoesNotExist:
        raise Http404("This import is not part of the campaign.") from None
    return job, campaign


# --- making campaigns -------------------------------------------------------------------------

MAY_NOT_CREATE = "Only staff and the owners of a campaign can create campaigns."


def campaigns_owned_by(user: AnyUser) -> QuerySet[Campaign]:
    """The campaigns the user owns (staff: every campaign), as a queryset."""
    if not user.is_authenticated:
        return Campaign.objects.none()
    if user.is_staff:
        return Campaign.objects.all()
    return Campaign.objects.filter(memberships__user=user, memberships__role=Role.OWNER)


def require_campaign_creator(user: AnyUser) -> None:
    """Who may create a campaign: staff, and whoever owns one already (PermissionDenied for
    anyone else: graders and reviewers work in campaigns, they do not make them)."""
    if not user.is_authenticated or not campaigns_owned_by(user).exists():
        raise PermissionDenied(MAY_NOT_CREATE)


# --- model runs (workers/) --------------------------------------------------------------------

MAY_NOT_RUN = "Only staff and the owners of the target campaign can run a model on it."
NO_RUN = "This model run does not exist, or it is not yours to see."


def require_run_launcher(user: Any, target: Any) -> None:
    """Who may launch a model run on `target`: staff on anything; an owner on their own
    campaign ({"campaign": NAME}). PermissionDenied for anyone else, and for a non-staff
    user naming a campaign that does not exist (no oracle of campaign names)."""
    if not user.is_authenticated:
        raise PermissionDenied(MAY_NOT_RUN)
    if user.is_staff:
        return
    name = target.get("campaign") if isinstance(target, dict) and len(target) == 1 else None
    if not isinstance(name, str) or not campaigns_owned_by(user).filter(name=name).exists():
        raise PermissionDenied(MAY_NOT_RUN)


def runs_for(user: Any) -> Any:
    """The model runs the user may see: staff every run, an owner the runs on their campaigns."""
    from workers.models import ModelRun

    if not user.is_authenticated:
        return ModelRun.objects.none()
    if user.is_staff:
        return ModelRun.objects.all()
    names = list(campaigns_owned_by(user).values_list("name", flat=True))
    return ModelRun.objects.filter(target__campaign__in=names)


def get_model_run(user: Any, run_id: int) -> Any:
    """A model run for its page, live channel, cancel and resume (pages and API alike):
    staff, and the owners of its target campaign; 404 for everyone else."""
    from workers.models import ModelRun

    try:
        return runs_for(user).get(pk=run_id)
    except ModelRun.DoesNotExist:
        raise Http404(NO_RUN) from None


# --- disagreements (verification/) ------------------------------------------------------------

MAY_NOT_SEE_DISAGREEMENTS = "Only staff and the owners of a campaign can see disagreements."


def disagreements_for(user: Any) -> tuple[Any, Any]:
    """(the disagreements the user may list, the campaigns they own) for the disagreements
    page: staff every disagreement; an owner those about proofs of the campaigns they own.
    PermissionDenied for anyone else (graders, reviewers, outsiders)."""
    from django.db.models import Exists, OuterRef

    from verification.models import Disagreement

    owned = campaigns_owned_by(user)
    if not user.is_authenticated or not (user.is_staff or owned.exists()):
        raise PermissionDenied(MAY_NOT_SEE_DISAGREEMENTS)
    if user.is_staff:
        return Disagreement.objects.all(), owned
    of_owned = CampaignItem.objects.filter(proof=OuterRef("proof"), campaign__in=owned)
    return Disagreement.objects.filter(Exists(of_owned)), owned
