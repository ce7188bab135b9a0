"""`python manage.py run_model --kind verify --campaign NAME --backend replay --model M --n 1`.

The target is `--campaign NAME`, `--problem ID` (repeatable) or `--filter KEY=VALUE`
(repeatable, each narrowing: workers/targets.py), e.g. `--filter unanalysed=yes
--filter generator_model=M`; the matching ids are fixed when the run is created.

Creates a model run and carries it out here, batch by batch, with a progress bar (or,
with `--queue`, hands it to the Celery workers and follows its progress on the same bar;
`--detach` returns at once, Ctrl-C stops following and leaves the run going).
`--resume ID` takes up a run again: stored samples are kept, failed and missing ones asked
for anew. A malformed request is refused before anything is written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from workers import runs, tasks
from workers.backends import BACKENDS
from workers.models import ModelRun
from workers.prompts import Kind

FOLLOW_INTERVAL_S = 1.0


def _option(value: str) -> tuple[str, Any]:
    """KEY=VALUE for a backend option; whole numbers and decimals become numbers."""
    key, sep, raw = value.partition("=")
    if not sep or not key:
        raise ValueError(value)
    for kind in (int, float):
        try:
            return key, kind(raw)
        except ValueError:
            pass
    return key, raw


def _filter(value: str) -> tuple[str, str]:
    """KEY=VALUE for a filter target; the value stays text (the filters read it)."""
    key, sep, raw = value.partition("=")
    if not sep or not key.strip():
        raise ValueError(value)
    return key.strip(), raw


class Command(BaseCommand):
    help = "Generate, verify or meta-verify with a model: create a run and carry it out."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--kind", choices=Kind.values)
        target = parser.add_mutually_exclusive_group()
        target.add_argument("--campaign", metavar="NAME")
        target.add_argument("--problem", action="append", metavar="ID", help="repeatable")
        target.add_argument(
            "--filter",
            action="append",
            type=_filter,
            metavar="KEY=VALUE",
            help="repeatable; targets chosen by filter (workers/targets.py), e.g. "
            "generator_model=M, unanalysed=yes, source=S, campaign=NAME, problem=A,B",
        )
        parser.add_argument("--backend", choices=sorted(BACKENDS))
        parser.add_argument("--model", help="model name or path, as the backend knows it")
        parser.add_argument("--n", type=int, default=1, help="samples per target")
        parser.add_argument("--temperature", type=float, default=1.0)
        parser.add_argument("--top-p", type=float, default=1.0)
        parser.add_argument("--max-tokens", type=int, default=4096)
        parser.add_argument("--seed", type=int)
        parser.add_argument("--regex", help="structured output the engine must follow")
        parser.add_argument("--template", type=Path, help="a prompt template file ($problem...)")
        parser.add_argument(
            "--option",
            action="append",
            type=_option,
            default=[],
            metavar="KEY=VALUE",
            help="backend option, e.g. base_url=http://127.0.0.1:8000/v1 or recording=FILE",
        )
        parser.add_argument("--resume", type=int, metavar="RUN_ID", help="take up a run again")
        parser.add_argument(
            "--queue", action="store_true", help="hand the run to Celery and follow its progress"
        )
        parser.add_argument("--detach", action="store_true", help="with --queue: do not follow")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        run = self._resumed(options["resume"]) if options["resume"] else self._created(options)
        if options["queue"]:
            tasks.start_model_run.delay(run.pk)
            self.stdout.write(f"run {run.pk} queued: {run.total} samples, {run.target_description}")
            if options["detach"]:
                return
        before = run.done
        bar = tqdm(
            total=run.total,
            initial=run.done + run.failed,
            unit="sample",
            disable=options["no_progress"],
            desc=f"run {run.pk}",
        )

        def progress(current: ModelRun) -> None:
            bar.update(current.done + current.failed - bar.n)
            bar.set_postfix(failed=current.failed, tokens_out=current.tokens_out)

        try:
            if options["queue"]:
                run = self._follow(run, progress)
            else:
                run = runs.run_batches(run, progress=progress)
        except KeyboardInterrupt:
            if not options["queue"]:
                raise
            self.stdout.write(f"stopped following run {run.pk}; the workers carry on")
            return
        finally:
            bar.close()
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(run.failed_by_reason.items()))
        self.stdout.write(
            f"run {run.pk} {run.status}: {run.done}/{run.total} samples stored "
            f"({run.done - before} new), {run.failed} failed{f' ({reasons})' if reasons else ''}, "
            f"tokens in {run.tokens_in}, out {run.tokens_out}"
        )

    @staticmethod
    def _follow(run: ModelRun, progress: Callable[[ModelRun], None]) -> ModelRun:
        """The progress of a run the workers carry out, until it is done or cancelled."""
        while True:
            run.refresh_from_db()
            progress(run)
            if run.status in (ModelRun.Status.DONE, ModelRun.Status.CANCELLED):
                return run
            time.sleep(FOLLOW_INTERVAL_S)

    @staticmethod
    def _resumed(run_id: int) -> ModelRun:
        try:
            run = ModelRun.objects.get(pk=run_id)
        except ModelRun.DoesNotExist:
            raise CommandError(f"no model run {run_id}") from None
        runs.resume_run(run)
        return run

    @staticmethod
    def _created(options: dict[str, Any]) -> ModelRun:
        missing = [name for name in ("kind", "backend", "model") if not options[name]]
        if missing:
            raise CommandError(f"give --{', --'.join(missing)} (or --resume RUN_ID)")
        if options["campaign"]:
            target: dict[str, Any] = {"campaign": options["campaign"]}
        elif options["problem"]:
            target = {"problems": options["problem"]}
        elif options["filter"]:
            target = {"filter": dict(options["filter"])}
        else:
            raise CommandError("give --campaign NAME, --problem ID or --filter KEY=VALUE")
        sampling = {
            "n": options["n"],
            "temperature": options["temperature"],
            "top_p": options["top_p"],
            "max_tokens": options["max_tokens"],
            "seed": options["seed"],
            "structured_regex": options["regex"],
        }
        template_text = None
        if options["template"]:
            try:
                template_text = options["template"].read_text(encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"cannot read the template: {exc}") from None
        try:
            return runs.create_run(
                kind=options["kind"],
                target=target,
                backend=options["backend"],
                model=options["model"],
                sampling=sampling,
                template_text=template_text,
                backend_options=dict(options["option"]),
            )
        except runs.RunRequestError as exc:
            raise CommandError(str(exc)) from None
