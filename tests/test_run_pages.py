"""Model-run pages and API: launching (owners of the target campaign, staff), one check of a
run request for page, API and command, the run page's figures and failed samples, cancel
and resume, and the run's live websocket."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.core.management import CommandError, call_command
from django.urls import reverse

from annotate.models import Campaign, Membership, Role
from proofdesk.asgi import application
from tests.conftest import PASSWORD
from tests.test_live import people  # noqa: F401  (fixture: browsers on the ASGI server)
from tests.test_model_runs import FakeBackend
from workers import runs, tasks
from workers.models import ModelOutput, ModelRun

pytestmark = pytest.mark.django_db

GOOD = {
    "kind": "verify",
    "campaign": "Test campaign",
    "backend": "replay",
    "model": "judge",
    "n": "2",
    "temperature": "0.7",
    "top_p": "0.95",
    "max_tokens": "512",
    "seed": "1",
    "template": "",
}
# The same malformed request on every entry point, and the reason each gives.
MALFORMED = [
    ({"backend": "nope"}, "'nope' (known: openai, replay, vllm)"),
    ({"n": "0"}, "n must be a whole number of at least 1, got 0"),
    ({"template": "Judge this: $problem"}, "the verify template is missing $proof"),
    ({"kind": "summarise"}, "unknown kind 'summarise'"),
]


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    """Runs handed to the workers (start_model_run.delay), once their transaction commits."""
    calls: list[int] = []

    class FakeTask:
        @staticmethod
        def delay(run_id: int) -> None:
            calls.append(run_id)

    monkeypatch.setattr(tasks, "start_model_run", FakeTask)
    return calls


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("sam_staff", password=PASSWORD, is_staff=True)


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def make_run(n: int = 2) -> ModelRun:
    return runs.create_run(
        kind="verify",
        target={"campaign": "Test campaign"},
        backend="replay",
        model="judge",
        sampling={"n": n},
    )


# --- launching from the page ------------------------------------------------------------------


def test_an_owner_launches_a_run_on_their_campaign_and_it_is_queued_once_committed(
    client, campaign, owner, queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = login(client, owner).post(reverse("run_new"), GOOD)
    run = ModelRun.objects.get()
    assert response.status_code == 302 and response.url == reverse("run_detail", args=[run.pk])
    assert (run.kind, run.backend, run.model, run.total) == ("verify", "replay", "judge", 2)
    assert run.sampling == {"n": 2, "temperature": 0.7, "top_p": 0.95, "max_tokens": 512,
                            "seed": 1}  # fmt: skip
    assert run.created_by == owner and run.template_version.startswith("verify-")
    assert queued == [run.pk]


def test_the_launch_page_offers_the_owners_campaigns_and_the_shipped_templates(
    client, campaign, owner
):
    page = login(client, owner).get(reverse("run_new")).content.decode()
    assert '<option value="Test campaign"' in page
    assert "$proof" in page and "Meta-verify analyses" in page


@pytest.mark.parametrize(("change", "reason"), MALFORMED)
def test_a_malformed_launch_is_refused_with_its_reason_and_creates_nothing(
    client, campaign, owner, queued, django_capture_on_commit_callbacks, change, reason
):
    with django_capture_on_commit_callbacks(execute=True):
        response = login(client, owner).post(reverse("run_new"), {**GOOD, **change})
    assert response.status_code == 400
    assert reason in response.content.decode().replace("&#x27;", "'")
    assert ModelRun.objects.count() == 0 and queued == []


def test_a_sampling_value_that_is_not_a_number_names_the_field(client, campaign, owner, queued):
    response = login(client, owner).post(reverse("run_new"), {**GOOD, "temperature": "hot"})
    assert response.status_code == 400
    assert "temperature must be a number" in response.content.decode()
    assert ModelRun.objects.count() == 0


def test_graders_reviewers_and_outsiders_cannot_open_the_launch_page(
    client, campaign, expert, reviewer, outsider
):
    for user in (expert, reviewer, outsider):
        client.logout()
        assert login(client, user).get(reverse("run_new")).status_code == 403
        assert login(client, user).post(reverse("run_new"), GOOD).status_code == 403
    assert ModelRun.objects.count() == 0


def test_an_owner_of_another_campaign_cannot_launch_on_this_one(
    client, campaign, outsider, queued
):
    other = Campaign.objects.create(name="Outsider's own", created_by=outsider)
    Membership.objects.create(campaign=other, user=outsider, role=Role.OWNER)
    response = login(client, outsider).post(reverse("run_new"), GOOD)
    assert response.status_code == 403
    problems = {**GOOD, "campaign": "", "problems": "PB-Test-001"}
    assert login(client, outsider).post(reverse("run_new"), problems).status_code == 403
    assert ModelRun.objects.count() == 0 and queued == []


def test_staff_launch_on_problems_by_id(client, campaign, staff, queued):
    data = {**GOOD, "campaign": "", "problems": "PB-Test-001", "kind": "generate",
            "n": "3"}  # fmt: skip
    response = login(client, staff).post(reverse("run_new"), data)
    run = ModelRun.objects.get()
    assert response.status_code == 302
    assert (run.kind, run.target, run.total) == ("generate", {"problems": ["PB-Test-001"]}, 3)


def test_launching_needs_login_and_a_get_or_post(client, campaign):
    response = client.get(reverse("run_new"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    assert client.put(reverse("run_new")).status_code == 405


# --- one check for page, API and command ------------------------------------------------------


@pytest.mark.parametrize(("change", "reason"), MALFORMED[:3])
def test_the_command_and_the_api_refuse_the_same_request_for_the_same_reason(
    client, campaign, owner, queued, change, reason, tmp_path
):
    data = {**GOOD, **change}
    api_body = {
        "kind": data["kind"],
        "target": {"campaign": data["campaign"]},
        "backend": data["backend"],
        "model": data["model"],
        "sampling": {"n": int(data["n"]), "temperature": 0.7},
        "template_text": data["template"] or None,
    }
    response = login(client, owner).post(
        reverse("api_runs"), json.dumps(api_body), content_type="application/json"
    )
    assert response.status_code == 400 and reason in response.json()["detail"]
    template = tmp_path / "t.txt"
    template.write_text(data["template"])
    args = ["--kind", data["kind"], "--campaign", data["campaign"], "--model", "judge"]
    args += ["--n", data["n"], "--no-progress", "--backend", "replay"]
    if data["template"]:
        args += ["--template", str(template)]
    if data["backend"] != "replay":
        with pytest.raises(CommandError, match="invalid choice: 'nope'"):
            call_command("run_model", *args[:-2], "--backend", data["backend"])
    else:
        with pytest.raises(CommandError, match=reason.replace("$", r"\$")):
            call_command("run_model", *args)
    assert ModelRun.objects.count() == 0 and queued == []


# --- the API ----------------------------------------------------------------------------------


def api_post(client, url: str, body: dict | None = None):
    return client.post(url, json.dumps(body or {}), content_type="application/json")


def test_the_api_launches_reads_cancels_and_resumes_a_run(
    client, campaign, owner, queued, django_capture_on_commit_callbacks
):
    login(client, owner)
    body = {
        "kind": "verify",
        "target": {"campaign": "Test campaign"},
        "backend": "replay",
        "model": "judge",
        "sampling": {"n": 2, "seed": 3},
    }
    with django_capture_on_commit_callbacks(execute=True):
        created = api_post(client, reverse("api_runs"), body)
    assert created.status_code == 201, created.json()
    run_id = created.json()["id"]
    assert created.json()["total"] == 2 and queued == [run_id]
    assert [r["id"] for r in client.get(reverse("api_runs")).json()] == [run_id]
    assert client.get(reverse("api_run", args=[run_id])).json()["status"] == "pending"
    cancelled = api_post(client, reverse("api_run_cancel", args=[run_id]))
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["cancel_requested"]
    with django_capture_on_commit_callbacks(execute=True):
        resumed = api_post(client, reverse("api_run_resume", args=[run_id]))
    assert resumed.json()["status"] == "running" and not resumed.json()["cancel_requested"]
    assert queued == [run_id, run_id]


def test_the_api_refuses_outsiders_anonymous_and_backend_options_from_non_staff(
    client, campaign, owner, outsider, queued
):
    run = make_run()
    body = {"kind": "verify", "target": {"campaign": "Test campaign"}, "backend": "replay",
            "model": "m", "sampling": {"n": 1}}  # fmt: skip
    assert api_post(client, reverse("api_runs"), body).status_code in (401, 403)
    assert api_post(login(client, outsider), reverse("api_runs"), body).status_code == 403
    assert client.get(reverse("api_run", args=[run.pk])).status_code == 404
    assert api_post(client, reverse("api_run_cancel", args=[run.pk])).status_code == 404
    client.logout()
    with_options = {**body, "backend_options": {"recording": "/etc/passwd"}}
    assert api_post(login(client, owner), reverse("api_runs"), with_options).status_code == 403
    bad = api_post(client, reverse("api_runs"), {**body, "sampling": 4})
    assert bad.status_code == 400 and bad.json()["detail"] == "sampling must be an object"
    assert ModelRun.objects.count() == 1 and queued == []
    run.refresh_from_db()
    assert not run.cancel_requested


# --- the run page -----------------------------------------------------------------------------


def hostile_output(request):
    return FakeBackend.analyses(request, text="<script>alert(1)</script> **fine** \\boxed{1}")


def test_the_run_page_shows_figures_failed_samples_with_reason_and_sanitised_output(
    client, campaign, owner, django_assert_max_num_queries
):
    run = make_run(n=2)
    runs.run_batches(run, backend=FakeBackend(hostile_output))
    run.refresh_from_db()
    ModelOutput.objects.filter(run=run, sample_index=1).update(
        text="", error_reason="server_error", error_message="HTTP 500: <b>boom</b>"
    )
    run.refresh_counts()
    run.save()
    login(client, owner)
    with django_assert_max_num_queries(12):
        page = client.get(reverse("run_detail", args=[run.pk])).content.decode()
    assert "1</span> stored, <span data-field=\"failed\">1</span> failed" in page
    assert "server_error: 1" in page
    assert "HTTP 500: &lt;b&gt;boom&lt;/b&gt;" in page
    assert "<script>alert(1)</script>" not in page and "<strong>fine</strong>" in page
    assert f'data-live-socket="/ws/runs/{run.pk}/"' in page
    assert "Tokens" in page and "Throughput" in page and "ETA" in page


def test_an_htmx_request_gets_only_the_status_part(client, campaign, owner):
    run = make_run()
    response = login(client, owner).get(
        reverse("run_detail", args=[run.pk]), headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="run-status"') and "<html" not in html


def test_only_owners_of_the_target_campaign_and_staff_see_a_run(
    client, campaign, owner, expert, outsider, staff
):
    run = make_run()
    url = reverse("run_detail", args=[run.pk])
    for user, status in ((owner, 200), (staff, 200), (expert, 404), (outsider, 404)):
        client.logout()
        assert login(client, user).get(url).status_code == status, user
    client.logout()
    assert client.get(url).status_code == 302
    client.logout()
    assert login(client, expert).get(reverse("run_list")).content.decode().count(url) == 0
    client.logout()
    assert url in login(client, owner).get(reverse("run_list")).content.decode()


def test_the_run_list_reads_a_fixed_number_of_queries(
    client, campaign, owner, django_assert_max_num_queries
):
    for _ in range(5):
        make_run()
    login(client, owner)
    with django_assert_max_num_queries(6):
        page = client.get(reverse("run_list")).content.decode()
    assert page.count('class="run-status pending"') == 5


def test_cancel_stops_new_model_calls_and_resume_continues_without_duplicating(
    client, campaign, owner, proof, queued, django_capture_on_commit_callbacks
):
    run = make_run(n=2)
    login(client, owner)
    assert client.get(reverse("run_cancel", args=[run.pk])).status_code == 405
    assert client.post(reverse("run_cancel", args=[run.pk])).status_code == 302
    run.refresh_from_db()
    assert (run.status, run.cancel_requested) == ("cancelled", True)
    backend = FakeBackend()
    assert runs.execute_run_batch(run.pk, run.target_ids, backend=backend) == 0
    assert backend.requests == []
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("run_resume", args=[run.pk])).status_code == 302
    assert queued == [run.pk]
    runs.run_batches(run, backend=backend)
    runs.run_batches(run, backend=backend)  # a second delivery of the same batches
    run.refresh_from_db()
    assert (run.status, run.done) == ("done", 2)
    assert ModelOutput.objects.filter(run=run).count() == 2 and len(backend.requests) == 1


def test_outsiders_cannot_cancel_or_resume(client, campaign, expert, queued):
    run = make_run()
    login(client, expert)
    assert client.post(reverse("run_cancel", args=[run.pk])).status_code == 404
    assert client.post(reverse("run_resume", args=[run.pk])).status_code == 404
    run.refresh_from_db()
    assert (run.status, run.cancel_requested, queued) == ("pending", False, [])


def test_run_figures_elapsed_throughput_and_eta(campaign, time_machine):
    import datetime as dt

    run = make_run(n=10)
    start = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    run.status, run.started_at, run.done, run.failed = "running", start, 3, 1
    figures = run.to_dict(now=start + dt.timedelta(seconds=8))
    assert figures["elapsed_s"] == 8 and figures["throughput_per_s"] == 0.5
    assert figures["eta_s"] == 12  # 6 samples left at half a sample a second
    run.status, run.finished_at = "done", start + dt.timedelta(seconds=20)
    assert run.to_dict(now=start + dt.timedelta(hours=1))["elapsed_s"] == 20
    assert run.to_dict()["eta_s"] is None


# --- live over the websocket ------------------------------------------------------------------


def session_cookie(user) -> tuple[bytes, bytes]:
    from django.conf import settings
    from django.test import Client

    c = Client()
    c.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return (b"cookie", f"{name}={c.cookies[name].value}".encode())


@pytest.mark.django_db(transaction=True)
def test_the_run_socket_pushes_figures_after_each_batch_to_owners_and_refuses_others(
    campaign, owner, expert
):
    run = make_run(n=2)
    owner_cookie, expert_cookie = session_cookie(owner), session_cookie(expert)
    origin = (b"origin", b"http://localhost")
    path = f"/ws/runs/{run.pk}/"

    async def refused() -> bool:
        ws = WebsocketCommunicator(application, path, headers=[origin, expert_cookie])
        connected, _ = await ws.connect(timeout=3)
        await ws.disconnect()
        return connected

    assert async_to_sync(refused)() is False

    async def live() -> dict:
        from asgiref.sync import sync_to_async

        ws = WebsocketCommunicator(application, path, headers=[origin, owner_cookie])
        connected, _ = await ws.connect(timeout=3)
        assert connected
        try:
            await sync_to_async(runs.run_batches)(run, backend=FakeBackend())
            return await ws.receive_json_from(timeout=3)
        finally:
            await ws.disconnect()

    event = async_to_sync(live)()
    assert event["type"] == "progress" and event["id"] == run.pk
    assert (event["status"], event["done"], event["total"]) == ("done", 2, 2)
    assert "text" not in json.dumps(event)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_run_page_in_a_browser_follows_the_run_without_a_reload(
    people,  # noqa: F811  (the fixture imported above)
    campaign,
    owner,
):
    from tests.browser import run_orm

    run = make_run(n=2)
    page = people.page_for(owner)
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(f)))
    page.goto(people.base_url + reverse("run_detail", args=[run.pk]), wait_until="load")
    page.wait_for_selector("[data-live-status][data-state=live]")
    assert page.locator("[data-field=status]").inner_text() == "Pending"
    page.evaluate("window.__notReloaded = true")
    run_orm(lambda: runs.run_batches(run, backend=FakeBackend()))
    page.wait_for_function(
        "document.querySelector('[data-field=status]').innerText === 'Done'"
    )
    assert page.locator("[data-field=done]").inner_text() == "2"
    assert page.evaluate("window.__notReloaded") is True
    assert frames and all("text" not in json.loads(f) for f in frames)
    assert not people.log.problems(), people.log.problems()
