"""Problems, proofs, campaigns, memberships and the experts' work: grades and reviews.

Every invariant that a bug could break is also a database constraint: the 0 / 0.5 / 1
scale, one proof text per problem, one role per person per campaign, one grade per grader
per proof per campaign, one review per reviewer per analysis per campaign.

The shape of expert work (docs/work.md tells the whole story):

- A `CampaignItem` is what one person works on: a proof (grading, adjudication) or an
  analysis of a proof (review; `analysis` is set and `proof` is the analysed proof, so
  every item shows a proof). Its lease and its counter of committed work are kind-neutral.
- A committed piece of work is a row of the kind's own table, `Grade` or `Review`, both
  built on `CommittedWork` (submission key, version, active time, timestamps). One table
  per kind rather than one `Work` table with content beside it, because a grade is also
  an object without an item (imported grades: a contest's human rating), and the
  million-row reads of agreement and exports read grades without a join.
- One `Draft` model holds autosaved work in progress of any kind (its `content` is the
  kind's form, as JSON). The queue, leases, drafts, replay, 409 on a stale edit and
  history are written once, in annotate/work/; each kind supplies only its content.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Exists, F, OuterRef, Q

SCORES = (Decimal("0"), Decimal("0.5"), Decimal("1"))
SCORE_CHOICES = [(Decimal("0"), "0"), (Decimal("0.5"), "0.5"), (Decimal("1"), "1")]


def score_field(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=2, decimal_places=1, choices=SCORE_CHOICES, **kwargs)


def score_check(field: str, *, name: str, nullable: bool = False) -> models.CheckConstraint:
    condition = Q(**{f"{field}__in": SCORES})
    if nullable:
        condition |= Q(**{f"{field}__isnull": True})
    return models.CheckConstraint(condition=condition, name=name)


def content_hash(text: str) -> str:
    """SHA-256 of a proof text: two imports of the same text are the same proof."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Category(models.TextChoices):
    ALGEBRA = "algebra", "Algebra"
    COMBINATORICS = "combinatorics", "Combinatorics"
    GEOMETRY = "geometry", "Geometry"
    NUMBER_THEORY = "number_theory", "Number theory"
    INEQUALITY = "inequality", "Inequality"
    OTHER = "other", "Other"


class Problem(models.Model):
    external_id = models.CharField(max_length=200, unique=True)
    statement = models.TextField()
    reference_solution = models.TextField(blank=True)
    guidelines = models.TextField(blank=True)
    short_answer = models.TextField(blank=True)
    category = models.CharField(max_length=20, choices=Category.choices, blank=True)
    level = models.CharField(max_length=50, blank=True)
    source = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["external_id"]
        constraints = [
            models.CheckConstraint(condition=~Q(external_id=""), name="problem_external_id_set"),
            models.CheckConstraint(condition=~Q(statement=""), name="problem_statement_set"),
        ]

    def __str__(self) -> str:
        return self.external_id


class Proof(models.Model):
    problem = models.ForeignKey(Problem, on_delete=models.PROTECT, related_name="proofs")
    external_id = models.CharField(max_length=200, blank=True)
    text = models.TextField()
    content_hash = models.CharField(max_length=64, editable=False)
    # Who wrote it: a model (name, version, sampling parameters) or a person.
    generator_model = models.CharField(max_length=200, blank=True)
    generator_version = models.CharField(max_length=200, blank=True)
    sampling = models.JSONField(default=dict, blank=True)
    human_author = models.CharField(max_length=200, blank=True)
    self_evaluation = models.TextField(blank=True)
    self_score = score_field(null=True, blank=True)
    # Facts carried over from the source file that have no column of their own, e.g. the
    # mean automatic rating of the DeepSeekMath-V2 release.
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["problem_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["problem", "content_hash"], name="proof_unique_text"),
            models.UniqueConstraint(
                fields=["problem", "external_id"],
                condition=~Q(external_id=""),
                name="proof_unique_external_id",
            ),
            models.CheckConstraint(condition=~Q(text=""), name="proof_text_set"),
            models.CheckConstraint(
                condition=Q(content_hash__regex=r"^[0-9a-f]{64}$"), name="proof_hash_is_sha256"
            ),
            score_check("self_score", name="proof_self_score_scale", nullable=True),
        ]

    def __str__(self) -> str:
        return f"{self.problem.external_id} proof {self.pk}"

    def save(self, *args, **kwargs) -> None:
        self.content_hash = content_hash(self.text)
        super().save(*args, **kwargs)

    @property
    def author_label(self) -> str:
        if self.human_author:
            return self.human_author
        return " ".join(p for p in (self.generator_model, self.generator_version) if p)


class Campaign(models.Model):
    class Kind(models.TextChoices):
        GRADE_PROOFS = "grade", "Grade proofs"
        REVIEW_ANALYSES = "review", "Review analyses"
        ADJUDICATE = "adjudicate", "Adjudicate"

    class Order(models.TextChoices):
        RANDOM = "random", "Random (seeded)"
        PRIORITY = "priority", "Priority first"

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.GRADE_PROOFS)
    overlap = models.PositiveSmallIntegerField(default=1, help_text="experts per item")
    blind = models.BooleanField(default=True)
    instructions = models.TextField(blank=True)
    rubric_version = models.CharField(max_length=50, default="v1")
    show_reference_solution = models.BooleanField(default=True)
    show_guidelines = models.BooleanField(default=True)
    order = models.CharField(max_length=20, choices=Order.choices, default=Order.RANDOM)
    seed = models.IntegerField(default=0)
    lease_seconds = models.PositiveIntegerField(default=30 * 60)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    proofs = models.ManyToManyField(Proof, through="CampaignItem", related_name="campaigns")

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(overlap__gte=1), name="campaign_overlap_positive"),
            models.CheckConstraint(condition=Q(lease_seconds__gte=30), name="campaign_lease_min"),
            models.CheckConstraint(condition=~Q(name=""), name="campaign_name_set"),
        ]

    def __str__(self) -> str:
        return self.name


def order_key_for(seed: int, proof_id: int) -> int:
    """Position of a proof in a campaign's seeded random order (stable, signed 63-bit)."""
    digest = hashlib.sha256(f"{seed}:{proof_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class CampaignItemQuerySet(models.QuerySet["CampaignItem"]):
    def lease_free(self, now) -> CampaignItemQuerySet:
        """Nobody holds the lease, or the holder let it expire."""
        return self.filter(Q(lease_holder__isnull=True) | Q(lease_expires_at__lte=now))

    def leased(self, now) -> CampaignItemQuerySet:
        return self.filter(lease_holder__isnull=False, lease_expires_at__gt=now)

    def claimable_for(self, campaign: Campaign, expert, now, done) -> CampaignItemQuerySet:
        """Items `expert` may be handed next, in the campaign's queue order.

        Not complete, not leased to anyone (an expired lease counts as free), not an item
        the expert already worked on (`done`: the kind's committed work of `expert` on the
        item `OuterRef("pk")`, see `annotate.work.kinds`), not an item they skipped.
        """
        skipped = Skip.objects.filter(item=OuterRef("pk"), grader=expert)
        return (
            self.filter(campaign=campaign, committed__lt=campaign.overlap)
            .lease_free(now)
            .filter(~Exists(done), ~Exists(skipped))
            .in_queue_order(campaign)
        )

    def in_queue_order(self, campaign: Campaign) -> CampaignItemQuerySet:
        if campaign.order == Campaign.Order.PRIORITY:
            return self.order_by("-priority", "order_key", "id")
        return self.order_by("order_key", "id")


class CampaignItem(models.Model):
    """One thing to work on in one campaign: a proof, or an analysis of a proof.

    The item carries its own lease (at most one expert holds it at a time) and a counter of
    committed work (grades or reviews), so that a claim is a single conditional UPDATE on
    one row. A review item names its analysis; `proof` is then the analysed proof.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="items")
    proof = models.ForeignKey(Proof, on_delete=models.PROTECT, related_name="campaign_items")
    analysis = models.ForeignKey(
        "verification.Analysis",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="campaign_items",
    )
    # Higher first when the campaign orders by priority (e.g. model disagreement).
    priority = models.FloatField(default=0.0)
    # Position in the seeded random order (derived from campaign seed and proof).
    order_key = models.BigIntegerField(default=0)
    # Committed work on the item (grades or reviews), at most one per expert.
    committed = models.PositiveSmallIntegerField(default=0)
    lease_holder = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="leased_items",
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CampaignItemQuerySet.as_manager()

    class Meta:
        ordering = ["campaign_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "proof"],
                condition=Q(analysis__isnull=True),
                name="campaign_item_unique",
            ),
            models.UniqueConstraint(
                fields=["campaign", "analysis"],
                condition=Q(analysis__isnull=False),
                name="campaign_item_unique_analysis",
            ),
            models.CheckConstraint(
                condition=Q(lease_holder__isnull=True, lease_expires_at__isnull=True)
                | Q(lease_holder__isnull=False, lease_expires_at__isnull=False),
                name="campaign_item_lease_complete",
            ),
        ]
        # The claim walks a campaign's items in queue order and stops at the first free
        # one, so the index must match the ORDER BY of `in_queue_order`, not the filters.
        indexes = [
            models.Index(fields=["campaign", "order_key", "id"], name="campaign_item_random_queue"),
            models.Index(
                fields=["campaign", "-priority", "order_key", "id"],
                name="campaign_item_priority_queue",
            ),
        ]

    def __str__(self) -> str:
        what = f"analysis {self.analysis_id}" if self.analysis_id else f"proof {self.proof_id}"
        return f"item {self.pk} ({what}) in campaign {self.campaign_id}"

    def save(self, *args, **kwargs) -> None:
        # Seeded random order; bulk_create callers set `order_key_for(...)` themselves.
        if not self.order_key and self.proof_id is not None:
            self.order_key = order_key_for(self.campaign.seed, self.analysis_id or self.proof_id)
        super().save(*args, **kwargs)


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    GRADER = "grader", "Grader"
    REVIEWER = "reviewer", "Reviewer"
    ADJUDICATOR = "adjudicator", "Adjudicator"


class MembershipQuerySet(models.QuerySet["Membership"]):
    def roles_of(self, user, campaign: Campaign | int) -> set[str]:
        """The user's roles in the campaign (given as a campaign or its id)."""
        if not user.is_authenticated:
            return set()
        return set(self.filter(user=user, campaign=campaign).values_list("role", flat=True))


class Membership(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "user", "role"], name="membership_unique"),
            models.CheckConstraint(
                condition=Q(role__in=[r.value for r in Role]), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.role} in {self.campaign}"


class GradeQuerySet(models.QuerySet["Grade"]):
    def for_campaign(self, campaign: Campaign) -> GradeQuerySet:
        return self.filter(campaign=campaign)

    def made_in_app(self) -> GradeQuerySet:
        return self.filter(origin=Grade.Origin.APP)

    def imported(self) -> GradeQuerySet:
        return self.filter(origin=Grade.Origin.IMPORTED)


class CommittedWork(models.Model):
    """What every kind of committed expert work has (see the module docstring for why each
    kind keeps its own table): the key that makes a retried POST find what it made, a
    version that an edit must name (a stale one is refused), the active time spent."""

    # Client-generated key of the submitting form: a retried POST finds the work it made.
    submission_key = models.UUIDField(null=True, blank=True, unique=True)
    version = models.PositiveIntegerField(default=1)
    # Active time on the item (page visible and in use), not wall time.
    active_seconds = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Grade(CommittedWork):
    """An expert's 0 / 0.5 / 1 score of a proof.

    Grades made in Proofdesk belong to a campaign and a user. Grades imported from
    elsewhere (a contest's human rating, another tool) name their grader as free text and
    record where they came from, so they are never mistaken for work done here.
    """

    class Origin(models.TextChoices):
        APP = "app", "Made in Proofdesk"
        IMPORTED = "imported", "Imported"

    proof = models.ForeignKey(Proof, on_delete=models.PROTECT, related_name="grades")
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.APP)
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.PROTECT, related_name="grades"
    )
    grader = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="grades",
    )
    external_grader = models.CharField(max_length=200, blank=True)
    import_source = models.CharField(max_length=500, blank=True)
    score = score_field()
    # The score on the source's own scale (e.g. 6 of 7), for imported grades.
    raw_score = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    raw_scale_max = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    comment = models.TextField(blank=True)

    objects = GradeQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            score_check("score", name="grade_score_scale"),
            models.CheckConstraint(
                condition=(
                    Q(origin="app", grader__isnull=False, campaign__isnull=False)
                    | Q(origin="imported", grader__isnull=True)
                    & ~Q(external_grader="")
                    & ~Q(import_source="")
                ),
                name="grade_origin_consistent",
            ),
            models.UniqueConstraint(
                fields=["campaign", "proof", "grader"],
                condition=Q(origin="app"),
                name="grade_once_per_grader_campaign",
            ),
            models.UniqueConstraint(
                fields=["proof", "external_grader", "import_source"],
                condition=Q(origin="imported"),
                name="imported_grade_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.score} for proof {self.proof_id}"


class GradeIssue(models.Model):
    """A comment anchored to a span of the proof *source* text.

    The anchor follows the W3C Web Annotation selectors: a text-position selector
    (`start`, `end`: character offsets into `Proof.text`) and a text-quote selector
    (`quote` with a little `prefix`/`suffix` context), so it can be re-found if offsets
    ever drift and exported as is.
    """

    class Severity(models.TextChoices):
        FATAL = "fatal", "Fatal"
        MINOR = "minor", "Minor"

    grade = models.ForeignKey(Grade, on_delete=models.CASCADE, related_name="issues")
    start = models.PositiveIntegerField(null=True, blank=True)
    end = models.PositiveIntegerField(null=True, blank=True)
    quote = models.TextField(blank=True)
    prefix = models.CharField(max_length=64, blank=True)
    suffix = models.CharField(max_length=64, blank=True)
    note = models.TextField(blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MINOR)
    # A verifier's claim the grader accepted into the grade (annotate/suggestions.py): the
    # claim and its analysis, both or neither. The analysis is kept though the claim names
    # it, so that "issues that came from analysis A" needs no join and survives in exports.
    claim = models.ForeignKey(
        "verification.Claim",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="grade_issues",
    )
    analysis = models.ForeignKey(
        "verification.Analysis",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="grade_issues",
    )

    class Meta:
        ordering = ["grade_id", "start", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(claim__isnull=True, analysis__isnull=True)
                | Q(claim__isnull=False, analysis__isnull=False),
                name="grade_issue_origin_whole",
            ),
            models.CheckConstraint(
                condition=Q(start__isnull=True, end__isnull=True)
                | Q(start__isnull=False, end__isnull=False, end__gte=models.F("start")),
                name="grade_issue_span_valid",
            ),
            models.CheckConstraint(
                condition=Q(severity__in=["fatal", "minor"]), name="grade_issue_severity_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.severity} issue on grade {self.grade_id}"


class ClaimDecision(models.Model):
    """A grader's verdict on a verifier's claim shown as a suggestion while grading
    (annotate/suggestions.py): accepted into the grade, or dismissed. Meta-verification
    data from a grading pass: who (the grade's grader), which claim, which way, when.

    Not a `ClaimVerdict`: those belong to a `Review`, a whole meta-verification of one
    analysis with a quality score, and say real / not real / unsure with a note. A grader
    judges some claims of several analyses in passing, as part of a grade, and "dismissed"
    says less than "not real" (it may be real but not worth an issue): a row of its own
    keeps the two kinds of evidence apart. Written when the grade is committed or edited;
    `decided_at` is then, and moves only when the decision changes.
    """

    class Decision(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        DISMISSED = "dismissed", "Dismissed"

    grade = models.ForeignKey(Grade, on_delete=models.CASCADE, related_name="claim_decisions")
    claim = models.ForeignKey(
        "verification.Claim", on_delete=models.PROTECT, related_name="grading_decisions"
    )
    decision = models.CharField(max_length=10, choices=Decision.choices)
    decided_at = models.DateTimeField()

    class Meta:
        ordering = ["grade_id", "claim_id"]
        constraints = [
            models.UniqueConstraint(fields=["grade", "claim"], name="claim_decision_once"),
            models.CheckConstraint(
                condition=Q(decision__in=["accepted", "dismissed"]), name="claim_decision_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.decision} claim {self.claim_id} in grade {self.grade_id}"


class GradeHistory(models.Model):
    """Every change to a grade: who, when, old and new score and issues."""

    grade = models.ForeignKey(Grade, on_delete=models.CASCADE, related_name="history")
    version = models.PositiveIntegerField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True)
    old_score = score_field(null=True, blank=True)
    new_score = score_field()
    old_comment = models.TextField(blank=True)
    new_comment = models.TextField(blank=True)
    old_issues = models.JSONField(default=list, blank=True)
    new_issues = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["grade_id", "version"]
        verbose_name_plural = "grade history"
        constraints = [
            models.UniqueConstraint(fields=["grade", "version"], name="grade_history_version"),
            score_check("new_score", name="grade_history_new_score_scale"),
            score_check("old_score", name="grade_history_old_score_scale", nullable=True),
        ]

    def __str__(self) -> str:
        return f"grade {self.grade_id} v{self.version}"


class Verdict(models.TextChoices):
    """A reviewer's judgement of one issue a verifier claims."""

    REAL = "real", "Real"
    NOT_REAL = "not_real", "Not real"
    UNSURE = "unsure", "Unsure"


class Review(CommittedWork):
    """A reviewer's meta-verification of one verifier analysis: a verdict on each claimed
    issue (`ClaimVerdict`) and the analysis's quality score, 0 / 0.5 / 1.

    `suggested_score` is what the rubric implies from the verdicts when the review was
    committed (annotate/review.py); a `score` that differs from it carries the reviewer's
    `override_reason`.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="reviews")
    item = models.ForeignKey(CampaignItem, on_delete=models.PROTECT, related_name="reviews")
    analysis = models.ForeignKey(
        "verification.Analysis", on_delete=models.PROTECT, related_name="reviews"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews"
    )
    score = score_field()
    suggested_score = score_field(null=True, blank=True)
    override_reason = models.TextField(blank=True)
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            score_check("score", name="review_score_scale"),
            score_check("suggested_score", name="review_suggested_scale", nullable=True),
            models.UniqueConstraint(fields=["item", "reviewer"], name="review_once_per_item"),
            models.CheckConstraint(
                condition=Q(suggested_score__isnull=True)
                | Q(score=F("suggested_score"))
                | ~Q(override_reason=""),
                name="review_override_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"review {self.pk} of analysis {self.analysis_id}: {self.score}"


class ClaimVerdict(models.Model):
    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="verdicts")
    claim = models.ForeignKey(
        "verification.Claim", on_delete=models.PROTECT, related_name="verdicts"
    )
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["review_id", "claim__order"]
        constraints = [
            models.UniqueConstraint(fields=["review", "claim"], name="claim_verdict_once"),
            models.CheckConstraint(
                condition=Q(verdict__in=[v.value for v in Verdict]), name="claim_verdict_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.verdict} for claim {self.claim_id}"


class ReviewHistory(models.Model):
    """Every version of a review: who, when, and the review as it was and became."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="history")
    version = models.PositiveIntegerField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True)
    old = models.JSONField(null=True, blank=True)
    new = models.JSONField()

    class Meta:
        ordering = ["review_id", "version"]
        verbose_name_plural = "review history"
        constraints = [
            models.UniqueConstraint(fields=["review", "version"], name="review_history_version"),
        ]

    def __str__(self) -> str:
        return f"review {self.review_id} v{self.version}"


class Draft(models.Model):
    """Autosaved work in progress of one expert on one item, of any kind (restored on
    reopening). `content` is the kind's form as JSON (a grade: score, comment, issues; a
    review: verdicts, score, reason), validated by the kind before it is stored."""

    item = models.ForeignKey(CampaignItem, on_delete=models.CASCADE, related_name="drafts")
    expert = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="drafts"
    )
    content = models.JSONField(default=dict, blank=True)
    active_seconds = models.PositiveIntegerField(default=0)
    # Made by the page that wrote it (milliseconds since the epoch times 1000 plus a per-tab
    # counter), so it only grows: the server keeps the newest draft and refuses an older one
    # (a page loaded before a late flush of the previous page must not overwrite it).
    revision = models.BigIntegerField(default=0)
    # A random id per browser tab: a write from another tab than the last one, made without
    # having seen the last one's draft, is refused instead of silently overwriting it.
    tab = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "expert"], name="draft_unique"),
        ]

    def __str__(self) -> str:
        return f"draft of {self.expert_id} on item {self.item_id}"


class Skip(models.Model):
    class Reason(models.TextChoices):
        OUTSIDE_EXPERTISE = "expertise", "Outside my expertise"
        TOO_LONG = "too_long", "Too long"
        STATEMENT_WRONG = "statement_wrong", "Problem statement is wrong"
        OTHER = "other", "Other"

    item = models.ForeignKey(CampaignItem, on_delete=models.CASCADE, related_name="skips")
    grader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "grader"], name="skip_unique"),
            models.CheckConstraint(
                condition=Q(reason__in=["expertise", "too_long", "statement_wrong", "other"]),
                name="skip_reason_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.grader_id} skipped item {self.item_id} ({self.reason})"


class ProblemFlag(models.Model):
    """The problem statement is wrong, says a grader of one campaign.

    Who sees a flag (its campaign's members only) is decided in annotate/flags.py.
    """

    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="flags")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="flags")
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    note = models.TextField(blank=True)
    resolved = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["problem", "campaign", "raised_by"], name="problem_flag_once_per_grader"
            ),
        ]

    def __str__(self) -> str:
        return f"flag on {self.problem_id} by {self.raised_by_id}"


class ImportJob(models.Model):
    """A file uploaded by a campaign owner, imported by a worker (or in-process)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.CASCADE, related_name="import_jobs"
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    format = models.CharField(max_length=20)
    file = models.FileField(upload_to="imports/%Y/%m/")
    original_name = models.CharField(max_length=255)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    counts = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"import {self.pk} ({self.format}, {self.status})"


class Adjudication(CommittedWork):
    """An adjudicator's gold score of a proof (0 / 0.5 / 1) with the reason for it, set
    after reading every grade, analysis and review of the proof (annotate/adjudication.py).

    The latest adjudication of a proof decides its gold label (annotate/gold.py). An
    adjudicator who graded the proof may not adjudicate it; that is checked when the work is
    committed, since it spans campaigns.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="adjudications")
    item = models.ForeignKey(CampaignItem, on_delete=models.PROTECT, related_name="adjudications")
    proof = models.ForeignKey(Proof, on_delete=models.PROTECT, related_name="adjudications")
    adjudicator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="adjudications"
    )
    score = score_field()
    reason = models.TextField()
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            score_check("score", name="adjudication_score_scale"),
            models.UniqueConstraint(
                fields=["item", "adjudicator"], name="adjudication_once_per_item"
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="adjudication_has_reason"),
        ]
        indexes = [models.Index(fields=["proof", "updated_at"], name="adjudication_latest")]

    def __str__(self) -> str:
        return f"adjudication {self.pk} of proof {self.proof_id}: {self.score}"


class AdjudicationHistory(models.Model):
    """Every version of an adjudication: who, when, and the adjudication as it was and
    became."""

    adjudication = models.ForeignKey(
        Adjudication, on_delete=models.CASCADE, related_name="history"
    )
    version = models.PositiveIntegerField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True)
    old = models.JSONField(null=True, blank=True)
    new = models.JSONField()

    class Meta:
        ordering = ["adjudication_id", "version"]
        verbose_name_plural = "adjudication history"
        constraints = [
            models.UniqueConstraint(
                fields=["adjudication", "version"], name="adjudication_history_version"
            ),
        ]

    def __str__(self) -> str:
        return f"adjudication {self.adjudication_id} v{self.version}"


class Provenance(models.TextChoices):
    """Where a proof's gold label comes from (annotate/gold.py has the rules)."""

    ADJUDICATED = "adjudicated", "Adjudicated"
    UNANIMOUS_EXPERTS = "unanimous_experts", "Unanimous experts"
    MAJORITY_EXPERTS = "majority_experts", "Majority of experts"
    SINGLE_EXPERT = "single_expert", "Single expert"
    IMPORTED = "imported", "Imported grades"
    # Reserved for auto-labels (n samples, m agreeing, k needed: in `evidence`).
    AUTO_LABEL = "auto_label", "Auto-label"


class GoldLabel(models.Model):
    """The current label of a proof: its score, where it comes from and the evidence it was
    computed from (ids of grades, the adjudication, ...).

    Written only by `annotate.gold.recompute_gold_labels`, never by hand (read-only in the
    admin); every change also writes a `GoldLabelHistory` row. This is what dataset exports
    read.
    """

    proof = models.OneToOneField(Proof, on_delete=models.CASCADE, related_name="gold_label")
    score = score_field()
    provenance = models.CharField(max_length=20, choices=Provenance.choices)
    # The adjudicator's reason, for an adjudicated label.
    reason = models.TextField(blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["proof_id"]
        constraints = [
            score_check("score", name="gold_label_score_scale"),
            models.CheckConstraint(
                condition=Q(provenance__in=[p.value for p in Provenance]),
                name="gold_label_provenance_valid",
            ),
            models.CheckConstraint(
                condition=~Q(provenance="adjudicated") | ~Q(reason=""),
                name="gold_label_adjudicated_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"gold {self.score} ({self.provenance}) for proof {self.proof_id}"


class GoldLabelHistory(models.Model):
    """Every change of a proof's gold label: the label as it was and became (`None`: no
    label, e.g. once experts tie)."""

    proof = models.ForeignKey(Proof, on_delete=models.CASCADE, related_name="gold_history")
    changed_at = models.DateTimeField(auto_now_add=True)
    old = models.JSONField(null=True, blank=True)
    new = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["proof_id", "changed_at", "id"]
        verbose_name_plural = "gold label history"

    def __str__(self) -> str:
        return f"gold label of proof {self.proof_id} at {self.changed_at}"


class StaleProof(models.Model):
    """A proof whose derived records (disagreements, gold label) lag behind its committed
    work: written in the same transaction as the work, removed once they are recomputed
    (annotate/work/derived.py). A crash between the commit and the recomputation leaves
    the row, so the next recomputation catches up: nothing is lost."""

    proof = models.OneToOneField(Proof, on_delete=models.CASCADE, related_name="+")
    marked_at = models.DateTimeField()

    class Meta:
        ordering = ["marked_at", "proof_id"]

    def __str__(self) -> str:
        return f"proof {self.proof_id} stale since {self.marked_at}"
