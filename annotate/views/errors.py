"""Error pages in the site's layout: what went wrong, in a sentence, and a way back.

The access helpers (annotate/access.py) and the views raise Http404 and PermissionDenied
with a sentence meant for the user; these pages show it, with a link to the campaign the
URL names (when the user is a member of it) and to the campaign list. `handler400` and the
others in proofdesk/urls.py answer when DEBUG is off; `ErrorPageMiddleware` gives views'
403s and 404s the same page when DEBUG is on, instead of Django's technical 404 page.

An ordinary 403 or 404 is logged as one warning line naming the path and the reason,
never with a traceback (see `proofdesk.logs.OneLineClientErrors`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.log import log_response

from annotate.access import roles_in
from annotate.models import Campaign

log = logging.getLogger(__name__)

REASONS = {
    400: "The request could not be understood; nothing was changed.",
    403: "You do not have access to this page.",
    404: "This page does not exist, or you do not have access to it.",
    500: "Something went wrong on the server; nothing was changed. Please try again.",
}
TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Not found",
    500: "Server error",
}


def reason_of(exception: BaseException | None, status: int) -> str:
    """The exception's own message when it is a sentence we wrote, else a generic one.

    Django's resolver raises Http404 with a dict (the URL patterns tried), which is never
    shown; a message is shown only when it is a plain string.
    """
    message = exception.args[0] if exception is not None and exception.args else None
    if isinstance(message, str) and message.strip():
        return message
    return REASONS[status]


def way_back(request: HttpRequest) -> tuple[str, str] | None:
    """(url, label) of the campaign named by the URL, if the user may open it."""
    match = request.resolver_match
    campaign_id = match.kwargs.get("campaign_id") if match else None
    user = getattr(request, "user", None)
    if campaign_id is None or user is None or not user.is_authenticated:
        return None
    campaign = Campaign.objects.filter(pk=campaign_id).only("name").first()
    if campaign is None:
        return None
    if not roles_in(user, campaign):
        return None
    if request.path == reverse("campaign_detail", args=[campaign.pk]):
        return None
    return reverse("campaign_detail", args=[campaign.pk]), f"Back to {campaign.name}"


def error_page(request: HttpRequest, status: int, exception: BaseException | None) -> HttpResponse:
    context = {
        "status": status,
        "title": TITLES[status],
        "reason": reason_of(exception, status),
        "back": way_back(request) if status in (403, 404) else None,
    }
    return HttpResponse(render_to_string(f"{status}.html", context, request=request), status=status)


def bad_request(request: HttpRequest, exception: BaseException) -> HttpResponse:
    # The reason of a 400 raised by Django (SuspiciousOperation, a bad upload) may quote
    # internals; the generic sentence is shown.
    return error_page(request, 400, None)


def permission_denied(request: HttpRequest, exception: BaseException) -> HttpResponse:
    return error_page(request, 403, exception)


def page_not_found(request: HttpRequest, exception: BaseException) -> HttpResponse:
    return error_page(request, 404, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """No database query and no user: the failure may be the database itself."""
    context = {"status": 500, "title": TITLES[500], "reason": REASONS[500], "bare": True}
    return HttpResponse(render_to_string("500.html", context), status=500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: the usual cause is a page left open across a sign-out or restart."""
    return error_page(
        request,
        403,
        PermissionDenied(
            "The form's security token is missing or out of date (the page was probably "
            "open across a sign-in or a server restart); reload the page and try again."
        ),
    )


class ErrorPageMiddleware:
    """Views' Http404 and PermissionDenied get the error page, DEBUG or not."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, Http404):
            status = 404
        elif isinstance(exception, PermissionDenied):
            status = 403
        else:
            return None
        response = error_page(request, status, exception)
        # One line, with the reason; Django would log the same response again without it.
        log_response(
            "%s: %s (%s)",
            response.reason_phrase,
            request.path,
            reason_of(exception, status),
            response=response,
            request=request,
        )
        return response
