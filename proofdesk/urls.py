from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from annotate.views import adjudication, campaigns, errors, grading, health, imports, pages, review
from verification import views as verification_views

# Error pages in the site's layout, with the reason (annotate/views/errors.py).
handler400 = errors.bad_request
handler403 = errors.permission_denied
handler404 = errors.page_not_found
handler500 = errors.server_error

urlpatterns = [
    path("", pages.campaign_list, name="campaign_list"),
    path("healthz", health.healthz, name="healthz"),
    # Browsers ask for /favicon.ico on pages without an icon link (admin, error pages).
    path("favicon.ico", RedirectView.as_view(url=settings.STATIC_URL + "img/favicon.svg")),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("campaigns/<int:campaign_id>/", pages.campaign_detail, name="campaign_detail"),
    path(
        "campaigns/<int:campaign_id>/items/<int:item_id>/",
        pages.item_detail,
        name="item_detail",
    ),
    # Expert grading (annotate/views/grading.py).
    path("campaigns/<int:campaign_id>/grade/", grading.queue, name="grading_queue"),
    path("campaigns/<int:campaign_id>/next/", grading.next_item, name="grading_next"),
    path("campaigns/<int:campaign_id>/my-grades/", grading.my_grades, name="grading_mine"),
    path(
        "campaigns/<int:campaign_id>/progress/", pages.campaign_progress, name="grading_progress"
    ),
    path(
        "campaigns/<int:campaign_id>/grades/<int:grade_id>/history/",
        grading.grade_history,
        name="grade_history",
    ),
    path(
        "campaigns/<int:campaign_id>/grade/<int:item_id>/",
        grading.grading_page,
        name="grading_page",
    ),
    path(
        "campaigns/<int:campaign_id>/grade/<int:item_id>/draft/",
        grading.save_draft,
        name="grading_draft",
    ),
    path(
        "campaigns/<int:campaign_id>/grade/<int:item_id>/submit/",
        grading.submit,
        name="grading_submit",
    ),
    path(
        "campaigns/<int:campaign_id>/grade/<int:item_id>/skip/", grading.skip, name="grading_skip"
    ),
    path(
        "campaigns/<int:campaign_id>/grade/<int:item_id>/lease/",
        grading.lease,
        name="grading_lease",
    ),
    # Reviewing analyses, meta-verification (annotate/views/review.py).
    path("campaigns/<int:campaign_id>/review/", review.queue, name="review_queue"),
    path("campaigns/<int:campaign_id>/review/next/", review.next_item, name="review_next"),
    path(
        "campaigns/<int:campaign_id>/review/<int:item_id>/",
        review.review_page,
        name="review_page",
    ),
    path(
        "campaigns/<int:campaign_id>/review/<int:item_id>/draft/",
        review.save_draft,
        name="review_draft",
    ),
    path(
        "campaigns/<int:campaign_id>/review/<int:item_id>/submit/",
        review.submit,
        name="review_submit",
    ),
    path("campaigns/<int:campaign_id>/review/<int:item_id>/skip/", review.skip, name="review_skip"),
    path(
        "campaigns/<int:campaign_id>/review/<int:item_id>/lease/", review.lease, name="review_lease"
    ),
    path(
        "campaigns/<int:campaign_id>/review/<int:item_id>/claims/merge/",
        review.merge,
        name="review_merge",
    ),
    path(
        "campaigns/<int:campaign_id>/review/<int:item_id>/claims/<int:claim_id>/split/",
        review.split,
        name="review_split",
    ),
    # Adjudicating proofs: the gold score with a reason (annotate/views/adjudication.py).
    path("campaigns/<int:campaign_id>/adjudicate/", adjudication.queue, name="adjudication_queue"),
    path(
        "campaigns/<int:campaign_id>/adjudicate/next/",
        adjudication.queue,
        name="adjudication_next",
    ),
    path(
        "campaigns/<int:campaign_id>/adjudicate/<int:item_id>/",
        adjudication.adjudication_page,
        name="adjudication_page",
    ),
    path(
        "campaigns/<int:campaign_id>/adjudicate/<int:item_id>/draft/",
        adjudication.save_draft,
        name="adjudication_draft",
    ),
    path(
        "campaigns/<int:campaign_id>/adjudicate/<int:item_id>/submit/",
        adjudication.submit,
        name="adjudication_submit",
    ),
    path(
        "campaigns/<int:campaign_id>/adjudicate/<int:item_id>/skip/",
        adjudication.skip,
        name="adjudication_skip",
    ),
    path(
        "campaigns/<int:campaign_id>/adjudicate/<int:item_id>/lease/",
        adjudication.lease,
        name="adjudication_lease",
    ),
    # Disagreements between raters, for owners (verification/views.py).
    path("disagreements/", verification_views.disagreement_list, name="disagreement_list"),
    path(
        "disagreements/adjudicate/",
        verification_views.adjudicate_disagreements,
        name="disagreements_adjudicate",
    ),
    # Model runs: pages (workers/views.py) and their API (workers/api.py).
    path("runs/", include("workers.urls")),
    path("api/runs/", include("workers.api")),
    # REST API for grading (annotate/api.py).
    path("api/", include("annotate.api")),
    # Importing files (annotate/views/imports.py).
    path("campaigns/<int:campaign_id>/import/", imports.upload, name="import_upload"),
    path(
        "campaigns/<int:campaign_id>/import/<int:job_id>/",
        imports.job_detail,
        name="import_job",
    ),
    # Making a review campaign from analyses chosen by filter (annotate/views/campaigns.py).
    path("campaigns/new/review/", campaigns.new_review_campaign, name="review_campaign_new"),
    path(
        "campaigns/new/adjudication/",
        campaigns.new_adjudication_campaign,
        name="adjudication_campaign_new",
    ),
    path("admin/", admin.site.urls),
]
