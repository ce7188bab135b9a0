"""Celery settings that make long GPU tasks safe, and which queue each task goes to."""

from __future__ import annotations

import inspect

import pytest

from proofdesk.celery import app
from workers import runs, tasks
from workers.backends.openai import OpenAIBackend


def queue_of(task_name: str) -> str:
    return app.amqp.router.route({}, task_name)["queue"].name


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("workers.tasks.gpu_execute_run_batch", "gpu"),
        ("workers.tasks.start_model_run", "cpu"),
        ("workers.tasks.run_import_job", "cpu"),
        ("workers.tasks.some_future_export", "cpu"),  # anything not named gpu_ stays off GPUs
    ],
)
def test_model_calls_are_routed_to_gpu_and_everything_else_to_cpu(task, queue):
    assert queue_of(task) == queue


def test_every_registered_task_of_ours_has_a_queue_a_worker_listens_on():
    ours = [name for name in app.tasks if name.startswith("workers.tasks.")]
    assert {"workers.tasks.gpu_execute_run_batch", "workers.tasks.start_model_run"} <= set(ours)
    assert {queue_of(name) for name in ours} <= {"gpu", "cpu"}


def test_a_task_is_acknowledged_only_once_done_and_requeued_when_its_worker_dies():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    # One task reserved at a time: a worker that dies holds back nothing but what it ran.
    assert app.conf.worker_prefetch_multiplier == 1
    # A GPU worker keeps its engine (and CUDA context) for its whole life.
    assert app.conf.worker_max_tasks_per_child is None


def test_the_visibility_timeout_is_longer_than_the_slowest_possible_batch():
    """With late acks, a task still running when the visibility timeout passes is delivered
    to a second worker: the timeout must exceed the worst batch the openai backend allows
    (every request of a batch waiting its full timeout on every retry, one after another)."""
    defaults = {
        name: p.default
        for name, p in inspect.signature(OpenAIBackend.__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    attempts = defaults["max_retries"] + 1
    per_request = attempts * defaults["timeout_s"] + defaults["max_retries"] * defaults[
        "backoff_max_s"
    ]
    worst_batch = runs.BATCH_SIZE * per_request  # even with no concurrency at all
    assert app.conf.broker_transport_options["visibility_timeout"] > worst_batch


def test_without_a_broker_tasks_run_in_process_and_with_one_they_are_queued(settings):
    assert app.conf.task_always_eager is (not settings.REDIS_URL)
    assert app.conf.task_default_queue == "cpu"


def test_tasks_are_thin_they_take_ids_and_call_the_domain_function(monkeypatch):
    calls = []
    monkeypatch.setattr(
        runs, "execute_run_batch", lambda run_id, ids: calls.append((run_id, ids)) or 3
    )
    assert tasks.gpu_execute_run_batch(7, [1, 2]) == 3
    assert calls == [(7, [1, 2])]
