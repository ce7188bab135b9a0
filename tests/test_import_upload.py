"""The upload page, the job page and the import task (in-process and on a real worker)."""

from __future__ import annotations

import json
import threading

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections
from django.urls import reverse

from annotate.models import ImportJob, Membership, Problem, Proof, Role
from tests.conftest import PASSWORD
from tests.import_support import PROOFBENCH_CSV, native_line, row_counts
from workers import tasks

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def enqueued(monkeypatch) -> list[int]:
    """Job ids the upload view hands to Celery (the task itself is run by the test)."""
    calls: list[int] = []

    class FakeTask:
        @staticmethod
        def delay(job_id: int) -> None:
            calls.append(job_id)

    monkeypatch.setattr("annotate.views.imports.run_import_job", FakeTask)
    return calls


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def upload_url(campaign) -> str:
    return reverse("import_upload", args=[campaign.pk])


def job_url(job) -> str:
    return reverse("import_job", args=[job.campaign_id, job.pk])


def jsonl_upload(lines=None, name: str = "proofs.jsonl") -> SimpleUploadedFile:
    lines = lines or [native_line("UP-1", text="first"), native_line("UP-2", text="second")]
    content = "".join(json.dumps(line) + "\n" for line in lines).encode()
    return SimpleUploadedFile(name, content, content_type="application/jsonl")


def make_job(
    campaign, owner, content: bytes, name: str = "proofs.jsonl", fmt: str = "native", **extra
):
    job = ImportJob(campaign=campaign, uploaded_by=owner, format=fmt, original_name=name, **extra)
    job.file.save(name, ContentFile(content), save=True)
    return job


def native_bytes(*lines) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


# -- the upload page ------------------------------------------------------------------------


def test_owners_see_the_upload_form_and_a_link_from_the_campaign(client, campaign, owner):
    login(client, owner)
    page = client.get(upload_url(campaign))
    assert page.status_code == 200
    assert b'enctype="multipart/form-data"' in page.content
    assert b'value="deepseek"' in page.content
    assert (
        upload_url(campaign).encode()
        in client.get(reverse("campaign_detail", args=[campaign.pk])).content
    )


def test_graders_get_403_outsiders_404_and_anonymous_the_login_page(
    client, campaign, expert, outsider
):
    url = upload_url(campaign)
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and anonymous.url.startswith(reverse("login"))
    assert client.post(url, {"format": "native", "file": jsonl_upload()}).status_code == 302
    assert login(client, expert).get(url).status_code == 403
    assert client.post(url, {"format": "native", "file": jsonl_upload()}).status_code == 403
    assert login(client, outsider).get(url).status_code == 404
    assert client.post(url, {"format": "native", "file": jsonl_upload()}).status_code == 404
    assert (
        upload_url(campaign).encode()
        not in login(client, expert).get(reverse("campaign_detail", args=[campaign.pk])).content
    )
    assert ImportJob.objects.count() == 0


def test_other_methods_are_not_allowed(client, campaign, owner):
    login(client, owner)
    assert client.put(upload_url(campaign)).status_code == 405
    assert client.delete(upload_url(campaign)).status_code == 405
    job = make_job(campaign, owner, b"")
    assert client.post(job_url(job)).status_code == 405


def test_an_upload_creates_a_pending_job_and_enqueues_it_after_commit(
    client, campaign, owner, enqueued, media_root, django_capture_on_commit_callbacks
):
    login(client, owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(upload_url(campaign), {"format": "native", "file": jsonl_upload()})

    job = ImportJob.objects.get()
    assert response.status_code == 302 and response.url == job_url(job)
    assert (job.campaign, job.uploaded_by, job.format, job.status) == (
        campaign,
        owner,
        "native",
        "pending",
    )
    assert job.original_name == "proofs.jsonl"
    assert (media_root / job.file.name).is_file()
    assert enqueued == [job.pk]
    assert Proof.objects.filter(problem__external_id__startswith="UP-").count() == 0  # not yet


def test_the_task_imports_the_file_into_the_campaign(campaign, owner):
    job = make_job(
        campaign, owner, native_bytes(native_line("UP-1", text="a"), native_line("UP-2", text="b"))
    )

    assert tasks.run_import_job(job.pk) == "done"

    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE and job.finished_at is not None
    assert job.counts["proofs"] == {"created": 2, "existing": 0}
    assert job.counts["campaign_items"] == {"created": 2, "existing": 0}
    assert job.errors == []
    assert campaign.items.filter(proof__problem__external_id__startswith="UP-").count() == 2


def test_a_bad_file_fails_the_job_with_line_numbered_errors_and_writes_nothing(campaign, owner):
    before = row_counts()
    job = make_job(campaign, owner, native_bytes(native_line("UP-1"), native_line("UP-2", text="")))

    assert tasks.run_import_job(job.pk) == "failed"

    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    assert job.errors == ["line 2: proof.text: required"]
    assert job.counts == {}
    assert row_counts() == before


def test_a_job_already_done_is_not_run_again(campaign, owner):
    job = make_job(campaign, owner, native_bytes(native_line("UP-1")))
    tasks.run_import_job(job.pk)
    job.refresh_from_db()
    finished_at = job.finished_at

    assert tasks.run_import_job(job.pk) == "skipped"  # a redelivered message

    job.refresh_from_db()
    assert job.finished_at == finished_at and job.counts["proofs"]["created"] == 1


def test_a_job_left_running_by_a_dead_worker_is_run_again(campaign, owner):
    job = make_job(
        campaign, owner, native_bytes(native_line("UP-1")), status=ImportJob.Status.RUNNING
    )
    assert tasks.run_import_job(job.pk) == "done"
    assert Problem.objects.filter(external_id="UP-1").exists()


def test_a_missing_job_is_skipped(db):
    assert tasks.run_import_job(987654) == "skipped"


def test_a_deepseek_upload_uses_the_original_file_name(campaign, owner):
    line = json.loads(
        (PROOFBENCH_CSV.parent.parent / "deepseek_math_v2" / "IMO2025.jsonl")
        .read_text()
        .splitlines()[0]
    )
    job = make_job(campaign, owner, native_bytes(line), name="IMO2025.jsonl", fmt="deepseek")
    assert tasks.run_import_job(job.pk) == "done"
    assert (
        Proof.objects.get(problem__external_id="IMO2025-1").grades.get().import_source
        == "IMO2025.jsonl"
    )


@pytest.mark.parametrize(
    "data, message",
    [
        ({"format": "native"}, b"This field is required."),
        ({"format": "xml", "file": "x"}, b"Select a valid choice."),
    ],
)
def test_invalid_uploads_show_the_form_again_and_create_no_job(
    client, campaign, owner, enqueued, data, message
):
    if "file" in data:
        data = {**data, "file": jsonl_upload()}
    response = login(client, owner).post(upload_url(campaign), data)
    assert response.status_code == 400
    assert message in response.content
    assert ImportJob.objects.count() == 0 and enqueued == []


def test_a_file_over_the_upload_limit_is_refused(client, campaign, owner, settings, enqueued):
    settings.IMPORT_MAX_UPLOAD_BYTES = 10
    response = login(client, owner).post(
        upload_url(campaign), {"format": "native", "file": jsonl_upload()}
    )
    assert response.status_code == 400
    assert b"uploads may be at most 10\xc2\xa0bytes" in response.content
    assert ImportJob.objects.count() == 0 and enqueued == []


def test_a_request_body_far_over_the_limit_is_refused_unread(
    client, campaign, owner, settings, enqueued, media_root
):
    settings.IMPORT_MAX_UPLOAD_BYTES = 10
    big = SimpleUploadedFile("big.jsonl", b"x" * 200_000)
    response = login(client, owner).post(upload_url(campaign), {"format": "native", "file": big})
    assert response.status_code == 413
    assert b"nothing was saved" in response.content
    assert ImportJob.objects.count() == 0 and not media_root.exists()


# -- the job page ---------------------------------------------------------------------------


def test_the_job_page_polls_while_the_job_is_pending(client, campaign, owner):
    job = make_job(campaign, owner, native_bytes(native_line("UP-1")))
    login(client, owner)
    page = client.get(job_url(job))
    assert page.status_code == 200 and b'hx-trigger="every 2s"' in page.content
    fragment = client.get(job_url(job), headers={"HX-Request": "true"})
    assert fragment.content.lstrip().startswith(b'<section id="job-status"')
    assert b"<html" not in fragment.content


def test_the_job_page_shows_counts_when_done_and_stops_polling(client, campaign, owner):
    job = make_job(campaign, owner, native_bytes(native_line("UP-1")))
    tasks.run_import_job(job.pk)
    page = login(client, owner).get(job_url(job), headers={"HX-Request": "true"})
    assert b"every 2s" not in page.content
    assert b"<td>proofs</td><td>1</td><td>0</td>" in page.content
    assert b"<td>campaign items</td><td>1</td><td>0</td>" in page.content


def test_the_job_page_lists_errors_escaped(client, campaign, owner):
    job = make_job(campaign, owner, b'{"problem": {"external_id": "<script>x</script>"}}\n')
    tasks.run_import_job(job.pk)
    page = login(client, owner).get(job_url(job))
    assert b"Nothing was imported" in page.content
    assert b"unknown problem &#x27;&lt;script&gt;x&lt;/script&gt;&#x27;" in page.content
    assert b"<script>x</script>" not in page.content


def test_the_job_page_is_for_owners_of_that_campaign_only(
    client, campaign, owner, expert, outsider
):
    job = make_job(campaign, owner, b"")
    assert client.get(job_url(job)).status_code == 302
    assert login(client, expert).get(job_url(job)).status_code == 403
    assert login(client, outsider).get(job_url(job)).status_code == 404
    other = campaign.__class__.objects.create(name="Other", created_by=outsider)
    Membership.objects.create(campaign=other, user=owner, role=Role.OWNER)
    wrong_campaign = reverse("import_job", args=[other.pk, job.pk])
    assert login(client, owner).get(wrong_campaign).status_code == 404


# -- in-process (eager) and on a real Celery worker --------------------------------------------


def test_without_a_broker_the_upload_is_imported_in_process(
    client, campaign, owner, django_capture_on_commit_callbacks
):
    from proofdesk.celery import app

    app.conf.task_always_eager, eager = True, app.conf.task_always_eager
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = login(client, owner).post(
                upload_url(campaign), {"format": "native", "file": jsonl_upload()}
            )
    finally:
        app.conf.task_always_eager = eager
    job = ImportJob.objects.get()
    assert response.url == job_url(job)
    assert job.status == ImportJob.Status.DONE


@pytest.mark.redis
def test_a_real_worker_imports_an_uploaded_job_end_to_end(
    redis_url, transactional_db, django_user_model
):
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun

    from annotate.models import Campaign
    from proofdesk.celery import app

    assert not app.conf.task_always_eager and app.conf.broker_url == redis_url
    owner = django_user_model.objects.create_user("worker_owner", password=PASSWORD)
    campaign = Campaign.objects.create(name="Worker campaign", created_by=owner)
    job = make_job(campaign, owner, native_bytes(native_line("RW-1", text="via redis")))
    finished = threading.Event()

    def on_postrun(task_id=None, task=None, args=None, **kwargs):
        if (
            task is not None
            and task.name == "workers.tasks.run_import_job"
            and list(args or ()) == [job.pk]
        ):
            connections.close_all()  # the worker thread's own connection
            finished.set()

    task_postrun.connect(on_postrun, weak=False)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            tasks.run_import_job.delay(job.pk)
            assert finished.wait(timeout=60), "the worker did not run the import job"
    finally:
        task_postrun.disconnect(on_postrun)

    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE, job.errors
    assert campaign.items.get().proof.text == "via redis"


@pytest.mark.parametrize("name", ["???", "★★★", " "])
def test_a_file_name_without_usable_characters_is_a_form_error(
    client, campaign, owner, enqueued, name
):
    data = {"format": "native", "file": jsonl_upload(name=name)}
    response = login(client, owner).post(upload_url(campaign), data)
    assert response.status_code == 400
    assert "rename the file" in response.content.decode()
    assert ImportJob.objects.count() == 0 and enqueued == []
