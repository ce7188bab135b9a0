"""Creating model runs and executing them batch by batch, safely redelivered.

`create_run` checks a whole request (kind, backend, sampling, template, targets) before
it writes anything, so a malformed request creates nothing. `execute_run_batch` is what
a Celery task (or `run_model`) calls for a few targets at a time; `run_batches` calls it
for every batch of a run in turn, stopping when the run is cancelled.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

from django.db import connections, transaction
from django.utils import timezone

from annotate.models import Campaign, Problem, Proof, content_hash
from verification.claims import anchor_claims, split_text
from verification.disagreements import run_outputs_stored
from verification.models import Analysis, Claim
from verification.parsing import ParseStatus, parse_analysis
from workers import targets
from workers.backends import (
    BackendError,
    GenerationRequest,
    GenerationResult,
    InferenceBackend,
    Sampling,
    backend_class,
    get_backend,
)
from workers.live import send_run_progress
from workers.models import ModelOutput, ModelRun
from workers.prompts import (
    VARIABLES,
    Kind,
    PromptError,
    PromptTemplate,
    default_template,
    split_generation,
)

BATCH_SIZE = 8  # targets per task: small enough that a lost worker loses little work
CANCEL_POLL_S = 1.0  # how often a batch with the backend looks for a cancellation

_backends: dict[str, InferenceBackend] = {}  # one per process and configuration


TARGET_SHAPES = 'the target is {"campaign": NAME}, {"problems": [ID, ...]} or {"filter": {...}}'


class RunRequestError(ValueError):
    """A run request that cannot be carried out, in words for the person who made it."""


def create_run(
    *,
    kind: str,
    target: dict[str, Any],
    backend: str,
    model: str,
    sampling: dict[str, Any],
    template_text: str | None = None,
    backend_options: dict[str, Any] | None = None,
    created_by: Any = None,
) -> ModelRun:
    """A new pending run, or `RunRequestError` and nothing written."""
    if kind not in VARIABLES:
        raise RunRequestError(f"unknown kind {kind!r} (known: {', '.join(Kind.values)})")
    try:
        backend_class(backend)
        parsed_sampling = Sampling.from_dict(sampling)
    except BackendError as exc:
        raise RunRequestError(exc.message or str(exc)) from None
    except TypeError as exc:
        raise RunRequestError(f"bad sampling: {exc}") from None
    if not model.strip():
        raise RunRequestError("name the model")
    try:
        template = (
            default_template(kind) if template_text is None else PromptTemplate(kind, template_text)
        )
    except PromptError as exc:
        raise RunRequestError(str(exc)) from None
    target, target_ids, description = resolve_targets(kind, target)
    if not target_ids:
        raise RunRequestError(f"nothing to {kind.replace('_', '-')} in {description}")
    return ModelRun.objects.create(
        kind=kind,
        target=target,
        target_description=description[:500],
        target_ids=target_ids,
        backend=backend,
        backend_options=backend_options or {},
        model=model,
        sampling=parsed_sampling.to_dict(),
        template_text=template.text,
        template_hash=template.content_hash,
        template_version=template.version,
        total=len(target_ids) * parsed_sampling.n,
        created_by=created_by,
    )


def resolve_targets(kind: str, target: dict[str, Any]) -> tuple[dict[str, Any], list[int], str]:
    """The target as recorded, its primary keys (problems, proofs or analyses below 1) and
    a description. A filter (`{"filter": {...}}`, workers/targets.py) is recorded as read."""
    if not isinstance(target, dict):
        raise RunRequestError(TARGET_SHAPES)
    if set(target) == {"filter"}:
        try:
            filters, ids, description = targets.resolve(kind, target["filter"])
        except targets.FilterError as exc:
            raise RunRequestError(f"bad filter: {exc}") from None
        if not ids:
            raise RunRequestError(f"no target matches the filter ({description})")
        return {"filter": filters}, ids, description
    ids, description = _named_targets(kind, target)
    return target, ids, description


def _named_targets(kind: str, target: dict[str, Any]) -> tuple[list[int], str]:
    if set(target) == {"campaign"}:
        try:
            campaign = Campaign.objects.get(name=target["campaign"])
        except Campaign.DoesNotExist:
            raise RunRequestError(f"no campaign named {target['campaign']!r}") from None
        proofs = Proof.objects.filter(campaign_items__campaign=campaign)
        description = f"campaign {campaign.name}"
    elif set(target) == {"problems"} and target["problems"]:
        names = list(target["problems"])
        found = set(
            Problem.objects.filter(external_id__in=names).values_list("external_id", flat=True)
        )
        if missing := [name for name in names if name not in found]:
            raise RunRequestError(f"no problem {', '.join(map(repr, missing))}")
        proofs = Proof.objects.filter(problem__external_id__in=names)
        description = f"problems {', '.join(names)}"
    else:
        raise RunRequestError(TARGET_SHAPES)
    if kind == Kind.GENERATE:
        if "problems" in target:
            ids = Problem.objects.filter(external_id__in=target["problems"])
        else:
            ids = Problem.objects.filter(proofs__in=proofs)
        return sorted(set(ids.values_list("pk", flat=True))), description
    if kind == Kind.VERIFY:
        return sorted(set(proofs.values_list("pk", flat=True))), description
    # Meta-verification asks about the analyses that found something wrong.
    analyses = Analysis.objects.filter(
        proof__in=proofs, parse_status=ParseStatus.OK, score__lt=1
    ).values_list("pk", flat=True)
    return sorted(set(analyses)), f"analyses scored below 1 in {description}"


def batches(run: ModelRun, size: int | None = None) -> list[list[int]]:
    ids, size = list(run.target_ids), size or BATCH_SIZE
    return [ids[at : at + size] for at in range(0, len(ids), size)]


def run_batches(
    run: ModelRun,
    *,
    backend: InferenceBackend | None = None,
    progress: Callable[[ModelRun], None] | None = None,
) -> ModelRun:
    """Every batch of `run` in turn, in this process; stops at a cancellation."""
    for batch in batches(run):
        run.refresh_from_db()
        if run.cancel_requested:
            break
        execute_run_batch(run.pk, batch, backend=backend)
        run.refresh_from_db()
        if progress:
            progress(run)
    return run


def cancel_run(run: ModelRun) -> None:
    """Ask the run to stop: batches not yet started make no model call."""
    ModelRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    ModelRun.objects.filter(pk=run.pk, status__in=["pending", "running"]).update(
        status=ModelRun.Status.CANCELLED, finished_at=timezone.now()
    )
    transaction.on_commit(lambda: send_run_progress(run.pk))


def resume_run(run: ModelRun) -> None:
    """Take up a cancelled or finished run again: its failed samples are asked for anew."""
    ModelRun.objects.filter(pk=run.pk).update(
        cancel_requested=False, status=ModelRun.Status.RUNNING, finished_at=None
    )
    ModelRun.objects.filter(pk=run.pk, started_at__isnull=True).update(started_at=timezone.now())
    run.refresh_from_db()
    transaction.on_commit(lambda: send_run_progress(run.pk))


def execute_run_batch(
    run_id: int, target_ids: Sequence[int], *, backend: InferenceBackend | None = None
) -> int:
    """Ask the backend about the targets' missing samples and store them; the number stored.

    Safe to run twice, or at once in two workers, for the same batch:

    1. Targets whose n samples are all stored (successfully) are left out; a cancelled or
       finished run makes no call at all.
    2. The backend is called outside any transaction (it may take minutes); a cancellation
       meanwhile stops its further calls (retries included) within `CANCEL_POLL_S`, and
       the requests it stopped are stored failed as `cancelled` (asked again on resume).
    3. Under a lock on the run row, the samples stored meanwhile by another delivery are
       left out again; failed rows for the rest are replaced by this attempt's results,
       inserted with ON CONFLICT DO NOTHING (the unique key is the last guard).
    4. The new successful samples become analyses (verify, with their claims) or proofs
       (generate); the run's counts are recomputed from what is stored.
    """
    run = ModelRun.objects.get(pk=run_id)
    if run.cancel_requested or run.status in (ModelRun.Status.DONE, ModelRun.Status.CANCELLED):
        return 0
    n = run.n
    known = set(run.target_ids)  # a batch never widens the run
    wanted = [tid for tid in dict.fromkeys(target_ids) if tid in known]
    stored = Counter(target for target, _ in _stored_keys(run, wanted))
    todo = [tid for tid in wanted if stored[tid] < n]
    if not todo:
        _finish_if_complete(run)
        return 0
    if run.status == ModelRun.Status.PENDING:
        ModelRun.objects.filter(pk=run.pk, status=ModelRun.Status.PENDING).update(
            status=ModelRun.Status.RUNNING, started_at=timezone.now()
        )
    prompts = _prompts(run, todo)
    sampling = Sampling.from_dict(run.sampling)
    asked = [tid for tid in todo if tid in prompts]  # a target deleted since is not asked
    with _watch_cancel(run.pk) as cancelled:
        requests = [
            GenerationRequest(
                prompt=prompts[tid][0],
                sampling=sampling,
                kind=run.kind,
                identity=prompts[tid][1],
                should_stop=cancelled,
            )
            for tid in asked
        ]
        try:
            engine = backend or _backend_for(run)
            answers = dict(zip(asked, engine.generate(requests), strict=True))
        except BackendError as exc:  # the backend cannot work at all: every request fails
            answers = {tid: GenerationResult(error=exc) for tid in asked}
    gone = BackendError("target_missing", "the target no longer exists")
    results = [answers.get(tid) or GenerationResult(error=gone) for tid in todo]
    return _store(run, todo, results)


@contextmanager
def _watch_cancel(run_id: int) -> Iterator[Callable[[], bool]]:
    """A test of "was the run cancelled?" that the backend may ask before every call, from
    any thread or event loop: a watcher thread reads the flag every `CANCEL_POLL_S` while
    the batch is with the backend (a batch answered sooner never reads it)."""
    done, cancelled = threading.Event(), threading.Event()

    def watch() -> None:
        while not done.wait(CANCEL_POLL_S):
            try:
                if ModelRun.objects.filter(pk=run_id, cancel_requested=True).exists():
                    cancelled.set()
                    return
            finally:
                connections.close_all()  # hold a connection (of the pool) only to look

    watcher = threading.Thread(target=watch, name=f"run-{run_id}-cancel-watch", daemon=True)
    watcher.start()
    try:
        yield cancelled.is_set
    finally:
        done.set()
        watcher.join()


def _stored_keys(run: ModelRun, target_ids: Iterable[int]) -> set[tuple[int, int]]:
    return set(
        run.outputs.filter(target_id__in=list(target_ids), error_reason="").values_list(
            "target_id", "sample_index"
        )
    )


def _backend_for(run: ModelRun) -> InferenceBackend:
    key = json.dumps([run.backend, run.model, run.backend_options], sort_keys=True)
    if key not in _backends:
        _backends[key] = get_backend(run.backend, run.model, **run.backend_options)
    return _backends[key]


def _prompts(run: ModelRun, target_ids: list[int]) -> dict[int, tuple[list[dict[str, str]], str]]:
    """Each target's chat prompt and the identity the replay backend knows it by."""
    template = PromptTemplate(run.kind, run.template_text)
    prompts = {}
    if run.kind == Kind.GENERATE:
        for problem in Problem.objects.filter(pk__in=target_ids):
            prompts[problem.pk] = (
                template.messages(problem=problem.statement),
                f"problem:{problem.external_id}",
            )
    elif run.kind == Kind.VERIFY:
        for proof in Proof.objects.filter(pk__in=target_ids).select_related("problem"):
            prompts[proof.pk] = (
                template.messages(problem=proof.problem.statement, proof=proof.text),
                f"proof:{proof.content_hash}",
            )
    else:
        for analysis in Analysis.objects.filter(pk__in=target_ids).select_related("proof__problem"):
            values = {
                "problem": analysis.proof.problem.statement,
                "proof": analysis.proof.text,
                "analysis": analysis.text,
            }
            prompts[analysis.pk] = (template.messages(**values), f"analysis:{analysis.text_hash}")
    return prompts


def _store(run: ModelRun, todo: list[int], results: list[GenerationResult]) -> int:
    n = run.n
    with transaction.atomic():
        ModelRun.objects.select_for_update().filter(pk=run.pk).first()  # serialise stores
        stored = _stored_keys(run, todo)
        rows = []
        for tid, result in zip(todo, results, strict=True):
            for index in range(n):
                if (tid, index) not in stored:
                    rows.append(_row(run, tid, index, result))
        fresh = {(row.target_id, row.sample_index) for row in rows}
        failed = run.outputs.filter(target_id__in=todo).exclude(error_reason="")
        stale = [
            pk
            for pk, t, i in failed.values_list("pk", "target_id", "sample_index")
            if (t, i) in fresh
        ]
        ModelOutput.objects.filter(pk__in=stale).delete()
        ModelOutput.objects.bulk_create(rows, ignore_conflicts=True)
        _materialise(run, todo)
        run.refresh_counts()
        run.save(update_fields=["done", "failed", "failed_by_reason", "tokens_in", "tokens_out"])
        _finish_if_complete(run)
        transaction.on_commit(lambda: send_run_progress(run.pk))
        # New analyses or meta-assessments may contradict the experts (verification/).
        transaction.on_commit(partial(run_outputs_stored, run.kind, list(todo)), robust=True)
    return sum(1 for row in rows if not row.error_reason)


def _row(run: ModelRun, target_id: int, index: int, result: GenerationResult) -> ModelOutput:
    common = {
        "run": run,
        "target_id": target_id,
        "sample_index": index,
        "backend": run.backend,
        "model": run.model,
        "template_version": run.template_version,
        "sampling": run.sampling,
        "latency_s": result.latency_s,
        "prompt_tokens": result.prompt_tokens,
    }
    output = next((o for o in result.outputs if o.index == index), None)
    if result.error is not None or output is None:
        error = result.error or BackendError("bad_response", f"no sample {index}")
        return ModelOutput(**common, error_reason=error.reason, error_message=error.message[:2000])
    if not output.text.strip() and not output.reasoning.strip():
        return ModelOutput(
            **common, finish_reason=output.finish_reason, error_reason="empty_output"
        )
    completion = output.completion_tokens
    if completion is None:  # the backend counted all n together: share it out
        completion = result.completion_tokens // len(result.outputs) + (
            result.completion_tokens % len(result.outputs) if index == 0 else 0
        )
    return ModelOutput(
        **common,
        text=output.text,
        reasoning=output.reasoning,
        finish_reason=output.finish_reason,
        completion_tokens=completion,
    )


def _full_text(output: ModelOutput) -> str:
    """The output as the parser reads it: a separate reasoning channel as `<think>`."""
    if output.reasoning:
        return f"<think>\n{output.reasoning}\n</think>\n\n{output.text}"
    return output.text


def _materialise(run: ModelRun, target_ids: list[int]) -> None:
    """Analyses, proofs or scores for the successful outputs that have none yet."""
    pending = list(
        # parse_status is set once an output is materialised (its score read).
        run.outputs.filter(target_id__in=target_ids, error_reason="", parse_status="")
    )
    if not pending:
        return
    if run.kind == Kind.VERIFY:
        _to_analyses(run, pending)
    elif run.kind == Kind.GENERATE:
        _to_proofs(run, pending)
    else:
        for output in pending:
            parsed = parse_analysis(_full_text(output), output.finish_reason or None)
            output.parse_status, output.score = parsed.status.value, parsed.score
        ModelOutput.objects.bulk_update(pending, ["parse_status", "score"])


def _to_analyses(run: ModelRun, outputs: list[ModelOutput]) -> None:
    proofs = Proof.objects.in_bulk({o.target_id for o in outputs})
    analyses = []
    for output in outputs:
        text = _full_text(output)
        fields = Analysis.parsed_fields(text, output.finish_reason)
        analyses.append(
            Analysis(
                proof=proofs[output.target_id],
                origin=Analysis.Origin.MODEL_RUN,
                text=text,
                text_hash=content_hash(text),
                model=run.model,
                prompt_version=run.template_version,
                sampling=run.sampling,
                import_source=f"model run {run.pk}",
                **fields,
            )
        )
    Analysis.objects.bulk_create(analyses)
    claims = []
    for output, analysis in zip(outputs, analyses, strict=True):
        answer = parse_analysis(analysis.text, output.finish_reason or None).answer
        claims.extend(anchor_claims(analysis, split_text(answer), analysis.proof.text))
        output.analysis = analysis
        output.parse_status, output.score = analysis.parse_status, analysis.score
    Claim.objects.bulk_create(claims)
    ModelOutput.objects.bulk_update(outputs, ["analysis", "parse_status", "score"])


def _to_proofs(run: ModelRun, outputs: list[ModelOutput]) -> None:
    problems = Problem.objects.in_bulk({o.target_id for o in outputs})
    for output in outputs:
        generation = split_generation(output.text)
        self_score = (
            parse_analysis(generation.self_evaluation) if generation.self_evaluation else None
        )
        output.parse_status = self_score.status.value if self_score else ParseStatus.NO_SCORE.value
        output.score = self_score.score if self_score else None
        if not generation.proof:
            continue
        proof, _ = Proof.objects.get_or_create(
            problem=problems[output.target_id],
            content_hash=content_hash(generation.proof),
            defaults={
                "text": generation.proof,
                "generator_model": run.model,
                "generator_version": run.template_version,
                "sampling": run.sampling,
                "self_evaluation": generation.self_evaluation,
                "self_score": output.score,
                "metadata": {"model_run": run.pk, "sample_index": output.sample_index},
            },
        )
        output.proof = proof
    ModelOutput.objects.bulk_update(outputs, ["proof", "parse_status", "score"])


def _finish_if_complete(run: ModelRun) -> None:
    stored = run.outputs.count()
    if stored >= run.total and run.status in (ModelRun.Status.PENDING, ModelRun.Status.RUNNING):
        ModelRun.objects.filter(pk=run.pk, status__in=["pending", "running"]).update(
            status=ModelRun.Status.DONE, finished_at=timezone.now()
        )
