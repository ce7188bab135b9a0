#!/usr/bin/env python
"""Grading load bench (issue 3): 32 graders on a PostgreSQL database of 1,000,000 proofs.

What it does, in order:

1. Creates a scratch database (`proofdesk_bench` unless `--db`), runs `manage.py migrate`
   against it and seeds the real tables with psycopg 3 `COPY`: 1,000,000 proofs
   (Markdown + LaTeX, a few kB each, every text distinct so content hashes are real and
   unique) of 10,000 problems, in 100 campaigns of 10,000 items each (overlap 2), and
   200,000 app grades on the first items of each campaign's queue (with `committed`
   and grade history kept consistent), 32 bench graders plus 32 former graders who left
   those grades, and one owner. Then `VACUUM ANALYZE`.
2. Starts the ASGI server as the issue says, `daphne` on free loopback ports with DEBUG
   off, a SECRET_KEY_FILE in a temporary directory and ALLOWED_HOSTS=127.0.0.1. The
   application is wrapped by a small ASGI middleware defined here (not an app change) that
   adds a `Server-Timing: app;dur=...` header: the time from the request entering Django
   to its response headers, so server time can be reported next to client time. Beside
   them, as the deployment runs, a Celery worker on the `cpu` queue (`--cpu-workers`), on
   Redis database 15 (unless `REDIS_URL` is set): it recomputes each committed proof's
   disagreements and gold label (annotate/work/derived.py); its CPU counts as the
   server's, and the RESULT line says how many proofs waited for it at most
   (`stale_max`) and how long after the load it took to catch up (`stale_drain_s`).
3. Logs each grader in through the login form (CSRF cookie + form token), then drives all
   graders concurrently for `--duration` seconds, each looping:
   claim (POST "Next") -> load the grading page -> autosave a draft (htmx POST) -> submit
   (POST with the page's submission_key), which claims the next proof and redirects to
   its page; the grader follows and goes on from there, as the browser does (only the
   first round, or one after a failed step, presses "Next"). Every claim is recorded as a
   lease interval (item, grader, claim answered, submit sent); two graders holding the same item in
   overlapping intervals is a double lease. After the run the database is checked too:
   no item with more app grades than its overlap, `committed` equal to the grades.
4. Prints p50/p95/p99 (client and server) per step, requests per second, and a final
   `RESULT ...` line.

The client is plain threads with `http.client` over keep-alive connections, so it adds
no dependency; it shares the machine's cores with the server and PostgreSQL (its own CPU
is printed, with the server's, PostgreSQL's and other processes', since on a shared
machine the latter distort every figure).

Two load phases. First the graders work *paced*: an exponential pause of `--think-ms`
(5 s) on average after the page, the autosave and the submit, so each grader finishes an
item every ~15 s, ten times faster than an expert grades; the p95 figures of the RESULT
line, compared with the goal, come from this phase. Then a *capacity* phase of
`--capacity-duration` seconds in which they click as fast as the server answers (a closed
loop: 32 clients always waiting, so by Little's law latency = 32 / throughput and the
latencies measure the server's queue, not its service time); its throughput is
`capacity_requests_per_s`. The server runs the project as configured (its settings, with
psycopg's connection pool; DATABASE_POOL_MIN/MAX/TIMEOUT pass through from the
environment), one daphne process per CPU as the README's deployment does (`--server-procs`),
graders spread over them as a proxy would. What-if switch, which leaves the project
untouched: `--settings`.

    .venv/bin/python bench/grading_load.py            # full size (seeding takes minutes)
    .venv/bin/python bench/grading_load.py --quick    # small, under a minute
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import html
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-grader-password-1"
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SEED = 20251127
BENCH_REDIS_URL = "redis://127.0.0.1:6379/15"

# --------------------------------------------------------------------------------------
# Realistic proof texts: Markdown + LaTeX in the style of model-written olympiad proofs.
# --------------------------------------------------------------------------------------

_VARS = "abcdefghkmnpqrstuvwxyz"
_WORDS = (
    "Since, therefore, hence, clearly, note that, by induction, by symmetry, it follows that, "
    "we claim that, suppose that, consider, observe that, by the AM-GM inequality, "
    "by Cauchy-Schwarz, applying the lemma, in particular, consequently, without loss of generality"
).split(", ")
_NOUNS = (
    "the sequence, the polynomial, the function, the triangle, the circle, the set, the graph, "
    "every vertex, the remainder, the sum, the product, each term, the inequality, the prime, "
    "the configuration, the invariant, the lattice point, the coefficient"
).split(", ")
_VERBS = (
    "is bounded, is periodic, is divisible by, is strictly increasing, has a fixed point, "
    "is symmetric, is nonnegative, vanishes, is an integer, is minimal, is at most, exceeds"
).split(", ")


def _formula(r: random.Random) -> str:
    """One formula body (TeX without delimiters)."""
    v, w = r.choice(_VARS), r.choice(_VARS)
    a, b, n = r.randint(2, 9), r.randint(1, 99), r.choice("nkmN")
    choices = (
        f"{v}_{{{n}+1}} = {a}{v}_{n} + {b}",
        f"\\sum_{{i=1}}^{{{n}}} {v}_i^{{{a}}} \\le {n}^{{{a + 1}}}",
        f"\\frac{{{v}^2+{w}^2}}{{2}} \\ge {v}{w}",
        f"{v} \\equiv {b} \\pmod{{{a}}}",
        f"\\left\\lfloor \\frac{{{v}}}{{{a}}} \\right\\rfloor",
        f"f({v}+{w}) = f({v}) + f({w}) + {a}{v}{w}",
        f"\\prod_{{p \\mid {n}}} \\left(1 - \\frac{{1}}{{p}}\\right)",
        f"\\binom{{{n}}}{{{a}}} = \\frac{{{n}!}}{{{a}!\\,({n}-{a})!}}",
        f"\\angle {v.upper()}{w.upper()}C = {b % 90 + 1}^\\circ",
        f"\\sqrt{{{v}^2 + {b}}} < {v} + \\frac{{{b}}}{{2{v}}}",
        f"|{v} - {w}| \\le \\varepsilon",
        f"\\gcd({v}, {w}) = {a}",
        f"{v} \\in \\mathbb{{Z}}_{{>0}}",
        f"\\lim_{{{n} \\to \\infty}} {v}_{n} = {a}",
        f"P(x) = x^{{{a}}} - {b}x + {a}",
    )
    return r.choice(choices)


def _inline(r: random.Random) -> str:
    body = _formula(r)
    return f"\\({body}\\)" if r.random() < 0.5 else f"${body}$"


def _sentence(r: random.Random, formulas: int) -> str:
    parts = [r.choice(_WORDS).capitalize(), r.choice(_NOUNS), r.choice(_VERBS)]
    for _ in range(formulas):
        parts.append(_inline(r))
        parts.append(r.choice(("and", "so", "whence", "where", "because")))
    parts.append(r.choice(_NOUNS) + ".")
    return " ".join(parts)


def _display(r: random.Random) -> str:
    lines = [_formula(r) for _ in range(r.randint(1, 3))]
    if len(lines) == 1:
        return f"\\[\n{lines[0]}\n\\]" if r.random() < 0.5 else f"$$\n{lines[0]}\n$$"
    return (
        "$$\n\\begin{aligned}\n" + " \\\\\n".join("&" + x for x in lines) + "\n\\end{aligned}\n$$"
    )


def proof_text(r: random.Random, target_chars: int) -> str:
    """A model-style proof of about `target_chars` characters."""
    blocks = ["**Solution.** We proceed in several steps."]
    size, step = len(blocks[0]), 1
    while size < target_chars:
        kind = r.random()
        if kind < 0.12:
            block = f"### Step {step}. {r.choice(_NOUNS).capitalize()} {r.choice(_VERBS)}"
            step += 1
        elif kind < 0.30:
            block = _display(r)
        elif kind < 0.40:
            block = "\n".join(f"- {_sentence(r, r.randint(0, 2))}" for _ in range(r.randint(2, 4)))
        elif kind < 0.43:
            block = "---"
        else:
            block = " ".join(_sentence(r, r.randint(0, 2)) for _ in range(r.randint(2, 5)))
        blocks.append(block)
        size += len(block) + 2
    blocks.append(
        f"Therefore the answer is \\(\\boxed{{{r.randint(1, 2025)}}}\\). \\(\\blacksquare\\)"
    )
    return "\n\n".join(blocks)


def proof_with_formulas(r: random.Random, chars: int, formulas: int) -> str:
    """A proof of about `chars` characters with exactly `formulas` math spans (render bench).

    Every tenth formula is a display block; the rest sit inline, one per sentence, four
    sentences to a paragraph; math-free paragraphs are spread between them up to `chars`.
    """
    blocks: list[str] = []
    para: list[str] = []
    for i in range(formulas):
        if i % 10 == 9:
            if para:
                blocks.append(" ".join(para))
                para = []
            blocks.append(_display(r))
        else:
            para.append(_sentence(r, 1))
            if len(para) == 4:
                blocks.append(" ".join(para))
                para = []
    if para:
        blocks.append(" ".join(para))
    size = sum(len(b) + 2 for b in blocks)
    prose: list[str] = []
    while size < chars - 250:
        p = " ".join(_sentence(r, 0) for _ in range(3))
        prose.append(p)
        size += len(p) + 2
    out: list[str] = []
    every = max(1, len(blocks) // max(1, len(prose)))
    for i, block in enumerate(blocks):
        if i % 12 == 0:
            out.append(
                f"### Step {i // 12 + 1}. {r.choice(_NOUNS).capitalize()} {r.choice(_VERBS)}"
            )
        out.append(block)
        if prose and i % every == 0:
            out.append(prose.pop())
    out.extend(prose)
    return "\n\n".join(out)


# --------------------------------------------------------------------------------------
# Sizes, database and seeding
# --------------------------------------------------------------------------------------


@dataclass
class Sizes:
    proofs: int
    campaigns: int
    grades: int
    graders: int
    proofs_per_problem: int = 100
    former_graders: int = 32
    overlap: int = 2

    @property
    def items_per_campaign(self) -> int:
        return self.proofs // self.campaigns

    @property
    def problems(self) -> int:
        return self.proofs // self.proofs_per_problem

    def check(self) -> None:
        if self.proofs % self.campaigns or self.items_per_campaign % self.proofs_per_problem:
            raise SystemExit("proofs must split evenly into campaigns and problems")
        per_campaign = self.grades // self.campaigns
        if per_campaign > self.items_per_campaign * self.overlap // 2:
            raise SystemExit("too many grades: keep at least half of each queue open")


FULL = Sizes(proofs=1_000_000, campaigns=100, grades=200_000, graders=32)
QUICK = Sizes(proofs=20_000, campaigns=10, grades=4_000, graders=8)

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def order_key_for(seed: int, proof_id: int) -> int:
    """Same formula as annotate.models.order_key_for (kept here: no Django in the seeder)."""
    digest = hashlib.sha256(f"{seed}:{proof_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def copy_escape(value: str) -> str:
    return value.translate(_COPY_ESCAPES)


def pg_url(base: str, dbname: str) -> str:
    parts = urlsplit(base)
    return parts._replace(path="/" + dbname).geturl()


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def recreate_database(admin_url: str, dbname: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{dbname}"')


def drop_database(admin_url: str, dbname: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def server_env(database_url: str, secret_file: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DJANGO_SETTINGS_MODULE")}
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY_FILE=str(secret_file),
        DEBUG="false",
        ALLOWED_HOSTS="127.0.0.1",
        # Plain HTTP over loopback: a browser would drop Secure cookies on http://.
        SECURE_COOKIES="false",
        LOG_LEVEL="WARNING",
        PYTHONPATH=os.pathsep.join([str(ROOT / "bench"), str(ROOT)]),
        DJANGO_SETTINGS_MODULE="proofdesk.settings",
    )
    # Redis as the deployment has it (broker, channel layer), in a database of the bench's own.
    env.setdefault("REDIS_URL", BENCH_REDIS_URL)
    return env


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )


def password_hash(env: dict[str, str]) -> str:
    """Django's hash of the bench password, made by Django (so logins need no re-hash)."""
    code = (
        "import django; django.setup();"
        "from django.contrib.auth.hashers import make_password;"
        f"print(make_password({PASSWORD!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip().splitlines()[-1]


class CopyWriter:
    """Buffers COPY text-format rows and hands them to psycopg in large chunks."""

    def __init__(self, copy) -> None:
        self.copy, self.buf, self.size = copy, [], 0

    def row(self, line: str) -> None:
        self.buf.append(line)
        self.size += len(line)
        if self.size > 4_000_000:
            self.flush()

    def flush(self) -> None:
        if self.buf:
            self.copy.write("".join(self.buf))
            self.buf, self.size = [], 0


def check_columns(cur, table: str, columns: list[str]) -> None:
    """Fail clearly if a migration added a NOT NULL column without a default we don't fill."""
    cur.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
        " AND is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO'",
        (table,),
    )
    missing = {r[0] for r in cur.fetchall()} - set(columns)
    if missing:
        raise SystemExit(f"bench seeding does not fill {table}.{sorted(missing)}: update the bench")


def seed(db_url: str, sizes: Sizes, pw_hash: str) -> dict:
    """Fill the scratch database with COPY; returns ids the load phase needs."""
    import psycopg
    from psycopg import sql

    r = random.Random(SEED)
    now = time.strftime("%Y-%m-%d %H:%M:%S+00")
    n_users = 1 + sizes.graders + sizes.former_graders
    owner_id = 1
    grader_ids = list(range(2, 2 + sizes.graders))
    former_ids = list(range(2 + sizes.graders, 1 + n_users))
    all_graders = grader_ids + former_ids

    # A pool of distinct proof bodies; each proof is a pool body plus a unique trailer, so
    # texts (and content hashes) differ while the database stays a sane size.
    sizes_pool = [int(min(20_000, max(800, r.lognormvariate(8.0, 0.5)))) for _ in range(800)]
    pool = [proof_text(r, n) for n in sizes_pool]
    pool_escaped = [copy_escape(t) for t in pool]
    pool_hashers = [hashlib.sha256(t.encode()) for t in pool]
    self_evals = [
        copy_escape(
            f"I checked each step. The argument in Step {i % 4 + 1} relies on "
            f"{_inline(r)}; I am fairly confident it is rigorous. Self-score: "
            f"\\(\\boxed{{{('0', '0.5', '1')[i % 3]}}}\\)"
        )
        for i in range(50)
    ]
    statements = [
        copy_escape(
            f"Let {_inline(r)} for all positive integers {_inline(r)}. "
            + " ".join(_sentence(r, 1) for _ in range(3))
            + f" Prove that {_inline(r)}."
        )
        for _ in range(200)
    ]
    references = [copy_escape(proof_text(r, 2000)) for _ in range(50)]
    guidelines = copy_escape(
        "**Full marks (1):** a complete and rigorous proof.\n\n"
        "**Partial (0.5):** the key lemma \\(f(x+y)=f(x)+f(y)\\) proven, minor gaps.\n\n"
        "**No marks (0):** only special cases, or a fatal error."
    )
    categories = ("algebra", "combinatorics", "geometry", "number_theory", "inequality")
    models = ("deepseek-math-v2", "qwen3-235b", "gpt-oss-120b", "kimi-k2")

    stats: dict = {"grader_ids": grader_ids, "owner_id": owner_id}
    t0 = time.perf_counter()
    with psycopg.connect(db_url) as conn:
        cur = conn.cursor()
        # The data is generated consistent; skip per-row FK triggers for speed.
        cur.execute("SET session_replication_role = replica")
        cur.execute("SET maintenance_work_mem = '512MB'")
        tables = [
            "auth_user", "annotate_problem", "annotate_proof", "annotate_campaign",
            "annotate_campaignitem", "annotate_membership", "annotate_grade",
            "annotate_gradehistory",
        ]  # fmt: skip
        # Truncating in this transaction lets COPY ... FREEZE skip the later hint-bit pass.
        cur.execute(f"TRUNCATE {', '.join(tables)} CASCADE")

        def copy(table: str, columns: list[str], rows) -> int:
            check_columns(cur, table, columns)
            cols = ", ".join(f'"{c}"' for c in columns)
            count = 0
            with cur.copy(f"COPY {table} ({cols}) FROM STDIN WITH (FREEZE)") as cp:
                w = CopyWriter(cp)
                for line in rows:
                    w.row(line)
                    count += 1
                w.flush()
            return count

        def users():
            names = ["bench_owner"]
            names += [f"grader{i:02d}" for i in range(1, sizes.graders + 1)]
            names += [f"former{i:02d}" for i in range(1, sizes.former_graders + 1)]
            for uid, name in enumerate(names, start=1):
                yield (
                    f"{uid}\t{pw_hash}\t\\N\tf\t{name}\t{name.capitalize()}\tBench\t"
                    f"{name}@example.org\tf\tt\t{now}\n"
                )

        copy(
            "auth_user",
            ["id", "password", "last_login", "is_superuser", "username", "first_name",
             "last_name", "email", "is_staff", "is_active", "date_joined"],
            users(),
        )  # fmt: skip

        def problems():
            for pid in range(1, sizes.problems + 1):
                yield (
                    f"{pid}\tBENCH-{pid:06d}\t{statements[pid % len(statements)]}\t"
                    f"{references[pid % len(references)]}\t{guidelines}\t\t"
                    f"{categories[pid % 5]}\tIMO-medium\tBench olympiad {2000 + pid % 25}\t{now}\n"
                )

        copy(
            "annotate_problem",
            ["id", "external_id", "statement", "reference_solution", "guidelines",
             "short_answer", "category", "level", "source", "created_at"],
            problems(),
        )  # fmt: skip
        log(f"  users and {sizes.problems:,} problems")

        text_bytes = 0

        def proofs():
            nonlocal text_bytes
            for i in range(sizes.proofs):
                k = r.randrange(len(pool))
                model = models[i % len(models)]
                trailer = f"\n\n_Sample {i + 1} by {model}, seed {r.getrandbits(32)}._"
                h = pool_hashers[k].copy()
                h.update(trailer.encode())
                text_bytes += len(pool[k]) + len(trailer)
                self_score = ("0", "0.5", "1", "\\N")[i % 4]
                yield (
                    f"{i + 1}\t{i // sizes.proofs_per_problem + 1}\t\t{pool_escaped[k]}"
                    f"{copy_escape(trailer)}\t{h.hexdigest()}\t{model}\t2025-11\t"
                    '{"temperature": 1.0, "top_p": 0.95}\t\t'
                    f"{self_evals[i % len(self_evals)]}\t{self_score}\t{{}}\t{now}\n"
                )

        copy(
            "annotate_proof",
            ["id", "problem_id", "external_id", "text", "content_hash", "generator_model",
             "generator_version", "sampling", "human_author", "self_evaluation", "self_score",
             "metadata", "created_at"],
            proofs(),
        )  # fmt: skip
        stats["proof_text_mb"] = round(text_bytes / 1e6)
        log(
            f"  {sizes.proofs:,} proofs ({text_bytes / 1e6:,.0f} MB of text)"
            f" at {time.perf_counter() - t0:.0f} s"
        )

        def campaigns():
            for c in range(1, sizes.campaigns + 1):
                yield (
                    f"{c}\tBench campaign {c:03d}\tgrade\t{sizes.overlap}\tt\t"
                    "Grade each proof 0 / 0.5 / 1; anchor issues to the passage.\tv1\tt\tt\t"
                    f"random\t{c}\t1800\t{now}\t{owner_id}\n"
                )

        copy(
            "annotate_campaign",
            ["id", "name", "kind", "overlap", "blind", "instructions", "rubric_version",
             "show_reference_solution", "show_guidelines", "order", "seed", "lease_seconds",
             "created_at", "created_by_id"],
            campaigns(),
        )  # fmt: skip

        # Each campaign's queue order is a seeded permutation; the grades already made
        # sit on the first items of that order: `full` items with `overlap` grades, then
        # `partial` items with one grade (still open, unless their grader claims again).
        per_campaign = sizes.grades // sizes.campaigns
        partial = per_campaign // 10
        full = (per_campaign - partial) // sizes.overlap
        partial = per_campaign - full * sizes.overlap
        grade_rows: list[tuple[int, int, int, int]] = []  # (campaign, proof, grader, item)
        n = sizes.items_per_campaign

        def items():
            item_id = 0
            for c in range(1, sizes.campaigns + 1):
                cr = random.Random(SEED * 1000 + c)
                keys = [order_key_for(c, (c - 1) * n + j + 1) for j in range(n)]
                rank = sorted(range(n), key=keys.__getitem__)
                committed = [0] * n
                for pos, j in enumerate(rank[: full + partial]):
                    graders = cr.sample(all_graders, sizes.overlap if pos < full else 1)
                    committed[j] = len(graders)
                    for g in graders:
                        grade_rows.append((c, (c - 1) * n + j + 1, g, (c - 1) * n + j + 1))
                for j in range(n):
                    item_id += 1
                    proof_id = (c - 1) * n + j + 1
                    yield (
                        f"{item_id}\t0\t{keys[j]}\t{committed[j]}\t\\N\t{now}\t{c}\t\\N\t"
                        f"{proof_id}\n"
                    )

        copy(
            "annotate_campaignitem",
            ["id", "priority", "order_key", "committed", "lease_expires_at",
             "created_at", "campaign_id", "lease_holder_id", "proof_id"],
            items(),
        )  # fmt: skip

        def memberships():
            mid = 0
            for c in range(1, sizes.campaigns + 1):
                mid += 1
                yield f"{mid}\towner\t{now}\t{c}\t{owner_id}\n"
                for g in all_graders:
                    mid += 1
                    yield f"{mid}\tgrader\t{now}\t{c}\t{g}\n"

        copy(
            "annotate_membership",
            ["id", "role", "created_at", "campaign_id", "user_id"],
            memberships(),
        )

        scores = ("0", "0.5", "1")

        def grades():
            for gid, (c, proof_id, grader, _item) in enumerate(grade_rows, start=1):
                yield (
                    f"{gid}\tapp\t\t\t{scores[gid % 3]}\t\\N\t\\N\t\t{r.randint(60, 1800)}\t"
                    f"{uuid.UUID(int=r.getrandbits(128), version=4)}\t1\t{now}\t{now}\t"
                    f"{c}\t{grader}\t{proof_id}\n"
                )

        copy(
            "annotate_grade",
            ["id", "origin", "external_grader", "import_source", "score", "raw_score",
             "raw_scale_max", "comment", "active_seconds", "submission_key", "version",
             "created_at", "updated_at", "campaign_id", "grader_id", "proof_id"],
            grades(),
        )  # fmt: skip

        def history():
            for gid, (_c, _p, grader, _i) in enumerate(grade_rows, start=1):
                yield f"{gid}\t{gid}\t1\t{grader}\t{now}\t\\N\t{scores[gid % 3]}\t\t\t[]\t[]\n"

        copy(
            "annotate_gradehistory",
            ["id", "grade_id", "version", "changed_by_id", "changed_at", "old_score",
             "new_score", "old_comment", "new_comment", "old_issues", "new_issues"],
            history(),
        )  # fmt: skip
        log(f"  {len(grade_rows):,} grades at {time.perf_counter() - t0:.0f} s")

        for table in tables:
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" GREATEST((SELECT max(id) FROM {table}), 1))"
            )
        cur.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(conn.info.dbname), sql.Literal(json.dumps(sizes.__dict__))
            )
        )
        conn.commit()
    stats["copy_s"] = time.perf_counter() - t0
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        stats["db_mb"] = (
            conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] // 10**6
        )
    stats["seed_s"] = time.perf_counter() - t0
    stats["grades"] = len(grade_rows)
    return stats


def seeded_sizes(db_url: str) -> dict | None:
    import psycopg

    try:
        with psycopg.connect(db_url) as conn:
            row = conn.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database"
                " WHERE datname = current_database()"
            ).fetchone()
    except psycopg.OperationalError:
        return None
    return json.loads(row[0]) if row and row[0] else None


# --------------------------------------------------------------------------------------
# Server: daphne on a free loopback port, the app wrapped to report its own time
# --------------------------------------------------------------------------------------


def _timed(app):
    """ASGI middleware: `Server-Timing: app;dur=<ms>` from request start to response headers.

    Django builds the whole response before it sends `http.response.start`, so this is the
    time spent in Django (middleware, view, queries, template) including any wait for a
    worker thread or the GIL inside the server process; it excludes Twisted's socket and
    HTTP parsing work and the wait before the request reaches the application.
    """

    async def application(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        start = time.perf_counter()

        async def timed_send(message):
            if message["type"] == "http.response.start":
                ms = (time.perf_counter() - start) * 1000
                headers = list(message.get("headers", []))
                headers.append((b"server-timing", f"app;dur={ms:.2f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        return await app(scope, receive, timed_send)

    return application


def __getattr__(name: str):
    # `daphne grading_load:timed_application` imports this module in the server process.
    if name == "timed_application":
        from proofdesk.asgi import application

        globals()[name] = _timed(application)
        return globals()[name]
    raise AttributeError(name)


@contextlib.contextmanager
def cpu_worker(env: dict[str, str], workdir: Path, name: str):
    """Run a Celery worker on the `cpu` queue, as the deployment does beside the web servers:
    it recomputes what follows each commit (annotate/work/derived.py); yield its pid."""
    celery = str(Path(sys.executable).with_name("celery"))
    logf = open(workdir / f"{name}.log", "wb")
    proc = subprocess.Popen(
        [celery, "-A", "proofdesk", "worker", "-Q", "cpu", "-P", "solo", "-l", "WARNING",
         "--without-gossip", "--without-mingle", "-n", f"{name}@bench"],
        cwd=ROOT, env=env, stdout=logf, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        time.sleep(1.0)
        if proc.poll() is not None:
            raise SystemExit(f"celery exited: {(workdir / f'{name}.log').read_text()[-3000:]}")
        yield proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        logf.close()


def stale_proofs(db_url: str) -> int:
    """Proofs whose disagreements and gold label wait for the cpu worker."""
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM annotate_staleproof").fetchone()[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def asgi_server(env: dict[str, str], workdir: Path, timed: bool = True, name: str = "daphne"):
    """Run daphne; yield (port, pid). Its output goes to workdir/<name>.log."""
    port = free_port()
    app = "grading_load:timed_application" if timed else "proofdesk.asgi:application"
    daphne = str(Path(sys.executable).with_name("daphne"))
    logf = open(workdir / f"{name}.log", "wb")
    proc = subprocess.Popen(
        [daphne, "-v", "0", "-b", "127.0.0.1", "-p", str(port), app],
        cwd=ROOT, env=env, stdout=logf, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"daphne exited: {(workdir / f'{name}.log').read_text()[-3000:]}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/healthz", headers={"Host": "127.0.0.1"})
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("daphne did not answer /healthz within 60 s")
            time.sleep(0.2)
        yield port, proc.pid
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        logf.close()


# --------------------------------------------------------------------------------------
# HTTP client: one keep-alive connection and cookie jar per simulated grader
# --------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    start: float
    end: float
    server_ms: float | None

    @property
    def ms(self) -> float:
        return (self.end - self.start) * 1000

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


_SERVER_TIMING = re.compile(r"app;dur=([0-9.]+)")


class Browser:
    """The little of a browser the bench needs: cookies, CSRF, forms, keep-alive."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.origin = f"http://127.0.0.1:{port}"
        self.conn: http.client.HTTPConnection | None = None
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: bytes | None = None, headers=None) -> Response:
        hdrs = {
            "Host": f"127.0.0.1:{self.port}",
            "User-Agent": "proofdesk-bench/1",
            "Accept": "text/html,*/*",
            "Accept-Encoding": "identity",
        }
        if self.cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
            hdrs["Origin"] = self.origin
            hdrs["Referer"] = self.origin + "/"
        hdrs.update(headers or {})
        for attempt in range(2):
            fresh = self.conn is None
            if fresh:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                start = time.perf_counter()
                self.conn.request(method, path, body=body, headers=hdrs)
                resp = self.conn.getresponse()
                data = resp.read()
                end = time.perf_counter()
                break
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if fresh or attempt:  # only a stale keep-alive connection is retried
                    raise
        if resp.getheader("connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        headers_out: dict[str, str] = {}
        for k, v in resp.getheaders():
            k = k.lower()
            if k == "set-cookie":
                name, _, rest = v.partition("=")
                value, _, attrs = rest.partition(";")
                if "max-age=0" in attrs.lower() or "1970" in attrs:
                    self.cookies.pop(name.strip(), None)
                else:
                    self.cookies[name.strip()] = value
            else:
                headers_out[k] = v
        m = _SERVER_TIMING.search(headers_out.get("server-timing", ""))
        return Response(
            resp.status, headers_out, data, start, end, float(m.group(1)) if m else None
        )

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post(self, path: str, fields: dict[str, str], headers=None) -> Response:
        return self.request("POST", path, urlencode(fields).encode(), headers)


_CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
_HX_CSRF = re.compile(r'"X-CSRFToken":\s*"([^"]+)"')
_SUBMISSION_KEY = re.compile(r'name="submission_key" value="([^"]+)"')
_ITEM_URL = re.compile(r"/campaigns/(\d+)/grade/(\d+)/$")
_PROOF_SOURCE = re.compile(
    r'<script id="proof-source" type="application/json">(.*?)</script>', re.S
)


def location_path(resp: Response) -> str:
    parts = urlsplit(resp.headers.get("location", ""))
    return parts.path + ("?" + parts.query if parts.query else "")


def login(port: int, username: str) -> Browser:
    b = Browser(port)
    page = b.get("/login/")
    token = _CSRF_INPUT.search(page.text)
    if page.status != 200 or not token:
        raise SystemExit(f"login page: HTTP {page.status}")
    r = b.post("/login/", {"csrfmiddlewaretoken": token.group(1), "username": username,
                            "password": PASSWORD, "next": ""})  # fmt: skip
    if r.status != 302 or "sessionid" not in b.cookies:
        raise SystemExit(f"login of {username} failed: HTTP {r.status}")
    return b


# --------------------------------------------------------------------------------------
# The load: graders looping claim -> page -> autosave -> submit
# --------------------------------------------------------------------------------------

STEPS = ("claim", "page", "autosave", "submit", "page_after_submit")


@dataclass
class Recorder:
    samples: dict[str, list[tuple[float, float | None]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    error_examples: list[str] = field(default_factory=list)
    leases: list[tuple[int, int, float, float]] = field(default_factory=list)
    empty_queue: int = 0
    repeats: int = 0
    timeline: list[tuple[str, float, float, float | None, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ok(self, step: str, r: Response, expected: int) -> bool:
        with self.lock:
            self.samples[step].append((r.ms, r.server_ms))
            self.timeline.append((step, r.start, r.end, r.server_ms, r.status))
            if r.status != expected:
                self.errors[step] += 1
                if len(self.error_examples) < 5:
                    self.error_examples.append(f"{step}: HTTP {r.status} {r.text[:300]!r}")
                return False
        return True

    def failure(self, step: str, exc: BaseException) -> None:
        with self.lock:
            self.errors[step] += 1
            if len(self.error_examples) < 5:
                self.error_examples.append(f"{step}: {exc!r}")


@dataclass
class Grader:
    username: str
    user_id: int
    campaign_id: int
    browser: Browser
    csrf: str = ""
    rng: random.Random = field(default_factory=random.Random)
    active: int = 0
    think_s: float = 0.0
    stop_at: float = float("inf")
    hold: list | None = None  # [item, certainly held from, certainly held until]
    committed: set[int] = field(default_factory=set)
    # The next proof's page that the last submit led to (item id, response): the browser
    # is already on it, so the next round starts there without pressing "Next".
    landed: tuple[int, Response] | None = None

    def close_hold(self, rec: Recorder) -> None:
        if self.hold is not None:
            with rec.lock:
                rec.leases.append((self.hold[0], self.user_id, self.hold[1], self.hold[2]))
            self.hold = None

    def think(self) -> bool:
        """A pause between steps (exponential, mean --think-ms). False once the run is over:
        the grader then stops where it is (all graders resuming together at the deadline
        would be a burst no real grader makes)."""
        if self.think_s > 0:
            pause = self.rng.expovariate(1 / self.think_s)
            left = self.stop_at - time.perf_counter()
            time.sleep(max(0.0, min(pause, left)))
            return pause < left
        return True


def one_item(g: Grader, rec: Recorder, follow: bool) -> bool:
    """Claim, open, autosave and submit one proof. False when the queue is empty.

    Lease bookkeeping (for the double-lease check): a grader certainly holds an item from
    the moment the claim answered with it until the start of the last request that only
    its lease holder can make (the grading page, the autosave). A claim that answers with
    the item the grader already holds (after a failed step) continues the same hold.
    """
    b = g.browser
    if g.landed is not None:
        item_id, page = g.landed
        g.landed = None
    else:
        r = b.post(f"/campaigns/{g.campaign_id}/next/", {"csrfmiddlewaretoken": g.csrf})
        if not rec.ok("claim", r, 302):
            return True
        target = location_path(r)
        m = _ITEM_URL.search(target)
        if not m:
            with rec.lock:
                rec.empty_queue += 1
            return False
        item_id = int(m.group(2))
        if g.hold is None or g.hold[0] != item_id:
            g.close_hold(rec)
            if item_id in g.committed:
                with rec.lock:
                    rec.repeats += 1
            g.hold = [item_id, r.end, r.end]
        page = b.get(target)  # the browser follows the redirect at once
        if not rec.ok("page", page, 200):
            return True
    g.hold[2] = page.start
    text = page.text
    g.csrf = _CSRF_INPUT.search(text).group(1)
    hx_csrf = _HX_CSRF.search(text).group(1)
    key = _SUBMISSION_KEY.search(text).group(1)
    source = json.loads(html.unescape(_PROOF_SOURCE.search(text).group(1)))
    start = g.rng.randrange(0, max(1, len(source) - 60))
    issues = json.dumps([{
        "start": start, "end": start + 40, "quote": source[start : start + 40],
        "note": "This step needs a justification.", "severity": g.rng.choice(("minor", "fatal")),
    }])  # fmt: skip
    score = g.rng.choice(("0", "0.5", "1"))
    g.active += 37
    base = f"/campaigns/{g.campaign_id}/grade/{item_id}/"
    if not g.think():
        return True
    fields = {"score": score, "comment": "Step 2 is not justified.", "issues": issues,
              "active_seconds": str(g.active)}  # fmt: skip
    r = b.post(base + "draft/", fields, {
        "HX-Request": "true", "HX-Current-URL": b.origin + base, "HX-Target": "draft-status",
        "X-CSRFToken": hx_csrf,
    })  # fmt: skip
    if rec.ok("autosave", r, 200):
        g.hold[2] = r.start
    if not g.think():
        return True
    r = b.post(base + "submit/", {"csrfmiddlewaretoken": g.csrf, "submission_key": key, **fields})
    if rec.ok("submit", r, 302):
        g.committed.add(item_id)
        g.close_hold(rec)
        if follow:
            # The submit claimed the next proof and redirects to its page (or to the
            # queue when nothing is left): the browser follows, as a grader's does.
            target = location_path(r)
            m = _ITEM_URL.search(urlsplit(target).path)
            after = b.get(target)
            # The next proof's grading page counts as a page like any other; the queue
            # page (nothing left) is the only "page after submit".
            if rec.ok("page" if m else "page_after_submit", after, 200):
                g.csrf = _CSRF_INPUT.search(after.text).group(1)
                if m:
                    nxt = int(m.group(2))
                    if nxt in g.committed:
                        with rec.lock:
                            rec.repeats += 1
                    g.hold = [nxt, r.end, after.start]
                    g.landed = (nxt, after)
    g.think()
    return True


def run_graders(graders: list[Grader], rec: Recorder, seconds: float, follow: bool) -> float:
    stop_at = time.perf_counter() + seconds

    def loop(g: Grader) -> None:
        g.stop_at = stop_at
        g.landed = None  # a page drawn before a pause between phases is claimed afresh
        if g.think_s:  # paced graders start spread over one cycle, not all at once
            time.sleep(g.rng.uniform(0, 3 * g.think_s))
        while time.perf_counter() < stop_at:
            try:
                if not one_item(g, rec, follow):
                    return
            except Exception as exc:  # a broken connection or page: count it, keep going
                rec.failure("exception", exc)
                time.sleep(0.1)

    threads = [threading.Thread(target=loop, args=(g,), daemon=True) for g in graders]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def double_leases(leases: list[tuple[int, int, float, float]]) -> int:
    """Items certainly held by two graders at one moment (see `one_item`)."""
    by_item: dict[int, list[tuple[int, float, float]]] = defaultdict(list)
    for item, grader, start, end in leases:
        by_item[item].append((grader, start, end))
    doubles = 0
    for held in by_item.values():
        if any(
            a[0] != b[0] and a[1] < b[2] and b[1] < a[2]
            for i, a in enumerate(held)
            for b in held[i + 1 :]
        ):
            doubles += 1
    return doubles


class LeaseSampler(threading.Thread):
    """Polls the database: no grader may hold two unexpired leases in one campaign."""

    def __init__(self, db_url: str) -> None:
        import psycopg

        super().__init__(daemon=True)
        # Connected up front: the server may use up every connection slot later.
        self.conn = psycopg.connect(db_url, autocommit=True)
        self.stop = threading.Event()
        self.samples = self.violations = 0
        self.max_leased = self.max_connections = self.max_stale = 0

    def run(self) -> None:
        with self.conn as conn:
            while not self.stop.wait(2.0):
                rows = conn.execute(
                    "SELECT campaign_id, lease_holder_id, count(*) FROM annotate_campaignitem"
                    " WHERE lease_holder_id IS NOT NULL AND lease_expires_at > now()"
                    " GROUP BY 1, 2"
                ).fetchall()
                self.samples += 1
                self.violations += sum(1 for r in rows if r[2] > 1)
                self.max_leased = max(self.max_leased, sum(r[2] for r in rows))
                conns = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                ).fetchone()[0]
                self.max_connections = max(self.max_connections, conns - 1)
                stale = conn.execute("SELECT count(*) FROM annotate_staleproof").fetchone()[0]
                self.max_stale = max(self.max_stale, stale)


def db_checks(db_url: str, campaign_ids: list[int]) -> dict[str, int]:
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        over, mismatch = conn.execute(
            """
            SELECT count(*) FILTER (WHERE n > overlap), count(*) FILTER (WHERE n <> committed)
            FROM (
                SELECT ci.id, c.overlap, ci.committed AS committed,
                       (SELECT count(*) FROM annotate_grade g WHERE g.campaign_id = ci.campaign_id
                          AND g.proof_id = ci.proof_id AND g.origin = 'app') AS n
                FROM annotate_campaignitem ci JOIN annotate_campaign c ON c.id = ci.campaign_id
                WHERE ci.campaign_id = ANY(%s)
                  AND (ci.committed > 0 OR ci.lease_holder_id IS NOT NULL)
            ) t
            """,
            (campaign_ids,),
        ).fetchone()
    return {"overgraded_items": over, "committed_mismatch": mismatch}


def cpu_snapshot(server_pids: set[int], dbname: str = "") -> dict[str, float]:
    """CPU seconds so far: whole machine (busy), this client, the server, PostgreSQL.

    "postgres" is the live backends of `dbname` plus PostgreSQL's own background processes;
    "pg_exited" is the CPU of backends (of any database) that exited, which the postmaster
    collects as its children's time. The rest of the machine's busy time is "other".
    """
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    busy = (sum(fields[:8]) - fields[3] - fields[4]) / tick  # minus idle and iowait
    out = {"busy": busy, "client": 0.0, "server": 0.0, "postgres": 0.0, "pg_exited": 0.0}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                raw = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        rest = raw[raw.rindex(")") + 2 :].split()
        own = (int(rest[11]) + int(rest[12])) / tick
        children = (int(rest[13]) + int(rest[14])) / tick
        pid = int(entry)
        if pid == os.getpid():
            out["client"] += own
        elif pid in server_pids:
            out["server"] += own
        elif comm == "postgres" or comm.startswith("postgres:"):
            out["pg_exited"] += children
            backend = cmdline.count(" ") >= 4 and "127.0.0.1" in cmdline or "[local]" in cmdline
            if not backend or f" {dbname} " in cmdline:
                out["postgres"] += own
    return out


def wait_for_idle_machine(server_pids: set[int], limit_s: float) -> None:
    """Wait (up to limit_s) until processes other than ours use under 0.25 core for 3 s."""
    deadline = time.monotonic() + limit_s
    while True:
        a = cpu_snapshot(server_pids)
        time.sleep(3)
        b = cpu_snapshot(server_pids)
        other = (b["busy"] - a["busy"]) - sum(b[k] - a[k] for k in ("client", "server", "postgres"))
        if other / 3 < 0.25:
            log(f"machine idle enough (other processes {other / 3:.2f} cores)")
            return
        if time.monotonic() > deadline:
            log(f"WARNING: other processes still use {other / 3:.2f} cores; measuring anyway")
            return


def summarize_server_errors(server_log: str) -> Counter:
    """The final line of each traceback in the server log, counted."""
    found: Counter = Counter()
    lines = server_log.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            j = i + 1
            while j < len(lines) and (lines[j].startswith(" ") or not lines[j].strip()):
                j += 1
            if j < len(lines):
                found[lines[j].strip()] += 1
    return found


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))]


def report_table(rec: Recorder, title: str) -> None:
    print(f"\n{title}")
    print(
        f"{'step':<18}{'n':>7}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}   "
        f"{'srv p50':>8}{'srv p95':>8}{'srv p99':>8}  (ms)"
    )
    for step in STEPS:
        rows = rec.samples.get(step, [])
        if not rows:
            continue
        client = [c for c, _ in rows]
        server = [s for _, s in rows if s is not None]
        print(
            f"{step:<18}{len(rows):>7}{pct(client, 50):>9.1f}{pct(client, 95):>9.1f}"
            f"{pct(client, 99):>9.1f}{max(client):>9.1f}   {pct(server, 50):>8.1f}"
            f"{pct(server, 95):>8.1f}{pct(server, 99):>8.1f}"
        )


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, about a minute in all")
    ap.add_argument("--proofs", type=int)
    ap.add_argument("--campaigns", type=int)
    ap.add_argument("--grades", type=int)
    ap.add_argument("--graders", type=int)
    ap.add_argument("--duration", type=float, help="seconds of load (default 120, quick 20)")
    add = ap.add_argument
    add("--active-campaigns", type=int, default=1, help="campaigns graders share (default 1)")
    add(
        "--think-ms",
        type=float,
        help="mean pause between a grader's steps (default 5000, quick 1000; 0 = closed loop)",
    )
    add(
        "--capacity-duration",
        type=float,
        help="seconds of a closed-loop phase after the paced one (default 30, quick 5; 0 = none)",
    )
    add(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to this long for other processes to go idle",
    )
    add(
        "--solo-iterations",
        type=int,
        default=20,
        help="items one grader grades alone first (unloaded service times)",
    )
    add("--no-follow", action="store_true", help="skip the page the submit redirects to")
    add(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", ADMIN_URL),
        help="an admin connection; the scratch database is created next to it",
    )
    add("--db", default="proofdesk_bench", help="scratch database name")
    add("--reuse-db", action="store_true", help="keep --db if it holds data of the same sizes")
    add("--keep-db", action="store_true", help="do not drop the database at the end")
    add(
        "--server-procs",
        type=int,
        default=os.cpu_count() or 1,
        help="daphne processes on as many ports, graders spread over them (default: one per "
        "CPU, as the README's deployment runs them)",
    )
    add(
        "--cpu-workers",
        type=int,
        default=1,
        help="Celery workers on the cpu queue beside the servers (default 1; 0: what follows "
        "each commit waits in Redis)",
    )
    add("--settings", metavar="MODULE", help="what-if: serve with this settings module")
    add("--samples", metavar="FILE", help="write every measured request as JSON lines")
    add(
        "--server-path",
        metavar="DIR",
        action="append",
        default=[],
        help="what-if: extra PYTHONPATH entry for the server (e.g. for --settings)",
    )
    add(
        "--py-spy",
        metavar="FILE",
        help="profile the server during the load (.svg, .json speedscope, else collapsed)",
    )
    args = ap.parse_args(argv)
    base = QUICK if args.quick else FULL
    args.sizes = Sizes(
        proofs=args.proofs or base.proofs,
        campaigns=args.campaigns or base.campaigns,
        grades=args.grades if args.grades is not None else base.grades,
        graders=args.graders or base.graders,
    )
    args.sizes.check()
    if args.duration is None:
        args.duration = 20.0 if args.quick else 120.0
    if args.think_ms is None:
        args.think_ms = 1000.0 if args.quick else 5000.0
    if args.capacity_duration is None:
        args.capacity_duration = 5.0 if args.quick else 30.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes: Sizes = args.sizes
    workdir = Path(tempfile.mkdtemp(prefix="proofdesk-bench-"))
    secret = workdir / "secret_key"
    secret.write_text(uuid.uuid4().hex + uuid.uuid4().hex)
    secret.chmod(0o600)
    db_url = pg_url(args.pg_url, args.db)
    env = server_env(db_url, secret)
    if args.settings:
        env["DJANGO_SETTINGS_MODULE"] = args.settings
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], *args.server_path])
    if env["REDIS_URL"] == BENCH_REDIS_URL:
        import redis

        redis.Redis.from_url(BENCH_REDIS_URL).flushdb()  # no tasks left from an earlier run
    print(f"grading bench: {sizes.proofs:,} proofs, {sizes.campaigns} campaigns, "
          f"{sizes.grades:,} grades, {sizes.graders} graders, {args.duration:g} s, "
          f"database {args.db}, {os.cpu_count()} CPUs")  # fmt: skip
    seed_s = 0.0
    try:
        if args.reuse_db and seeded_sizes(db_url) == sizes.__dict__:
            log("reusing the seeded database")
        else:
            t0 = time.perf_counter()
            log("creating the database and migrating")
            recreate_database(args.pg_url, args.db)
            migrate(env)
            log("seeding with COPY")
            stats = seed(db_url, sizes, password_hash(env))
            seed_s = time.perf_counter() - t0
            log(
                f"seeded in {seed_s:.0f} s (COPY {stats['copy_s']:.0f} s, then VACUUM ANALYZE; "
                f"{stats['proof_text_mb']:,} MB of proof text, "
                f"database {stats['db_mb']:,} MB)"
            )
        result = load(args, env, db_url, workdir)
    finally:
        if not args.keep_db:
            drop_database(args.pg_url, args.db)
        shutil.rmtree(workdir, ignore_errors=True)
    result["seed_s"] = round(seed_s)
    head = ("p95_page_ms", "p95_submit_ms", "p95_claim_ms", "p95_autosave_ms", "requests_per_s",
            "double_leases")  # fmt: skip
    keys = list(head) + [k for k in result if k not in head]
    print("RESULT " + " ".join(f"{k}={result[k]}" for k in keys), flush=True)
    bad = ("double_leases", "errors", "repeat_items", "overgraded_items", "committed_mismatch")
    return 1 if any(result[k] for k in bad) else 0


def load(args: argparse.Namespace, env: dict[str, str], db_url: str, workdir: Path) -> dict:
    sizes: Sizes = args.sizes
    sampler = LeaseSampler(db_url)
    with contextlib.ExitStack() as stack:
        servers = [
            stack.enter_context(asgi_server(env, workdir, name=f"daphne{i}"))
            for i in range(args.server_procs)
        ]
        pids = {pid for _, pid in servers}
        pid = servers[0][1]
        workers = [
            stack.enter_context(cpu_worker(env, workdir, f"cpu{i}"))
            for i in range(args.cpu_workers)
        ]
        # The workers' CPU counts as the server's: both are the application.
        pids |= set(workers)
        log(f"daphne on 127.0.0.1 ports {[p for p, _ in servers]} (pids {sorted(pids)}); "
            f"logging in {sizes.graders} graders")  # fmt: skip
        graders: list[Grader] = []
        from concurrent.futures import ThreadPoolExecutor

        names = [(f"grader{i:02d}", i + 1) for i in range(1, sizes.graders + 1)]
        with ThreadPoolExecutor(4) as pool:
            browsers = list(pool.map(lambda n: login(servers[n[1] % len(servers)][0], n[0]), names))
        for (name, uid), b in zip(names, browsers, strict=True):
            campaign_id = 1 + (uid - 2) % args.active_campaigns
            queue = b.get(f"/campaigns/{campaign_id}/grade/")
            if queue.status != 200:
                raise SystemExit(f"queue page for {name}: HTTP {queue.status}")
            token = _CSRF_INPUT.search(queue.text) or _HX_CSRF.search(queue.text)
            graders.append(Grader(name, uid, campaign_id, b, token.group(1), random.Random(uid)))

        leases: list = []
        warm = Recorder()
        # One item each, concurrently, to warm caches and connections (not measured).
        threads = [
            threading.Thread(target=one_item, args=(g, warm, not args.no_follow)) for g in graders
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        leases += warm.leases
        if warm.errors:
            print("warm-up errors:", dict(warm.errors), *warm.error_examples, sep="\n  ")

        if args.wait_idle:
            wait_for_idle_machine(pids, args.wait_idle)
        solo = Recorder()
        log(f"one grader alone for {args.solo_iterations} items (unloaded service times)")
        for _ in range(args.solo_iterations):
            one_item(graders[0], solo, not args.no_follow)
        leases += solo.leases
        if solo.errors:
            print("errors:", dict(solo.errors), *solo.error_examples, sep="\n  ")
        report_table(solo, f"One grader alone ({args.solo_iterations} items): client ms, server ms")

        rec = Recorder()
        campaign_ids = sorted({g.campaign_id for g in graders})
        sampler.start()
        spy = None
        if args.py_spy:
            fmt = {".svg": "flamegraph", ".json": "speedscope"}.get(Path(args.py_spy).suffix, "raw")
            spy = subprocess.Popen([
                shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy")), "record",
                "--pid", str(pid), "--duration", str(int(args.duration)), "--rate", "200",
                "--format", fmt, "--output", args.py_spy, "--nonblocking", "--threads",
            ], stdout=subprocess.DEVNULL)  # fmt: skip
        for g in graders:
            g.think_s = args.think_ms / 1000
        log(f"{len(graders)} graders for {args.duration:g} s")
        cpu0 = cpu_snapshot(pids, args.db)
        load0 = os.getloadavg()[0]
        elapsed = run_graders(graders, rec, args.duration, not args.no_follow)
        cpu1 = cpu_snapshot(pids, args.db)
        sampler.stop.set()
        sampler.join()
        if spy is not None:
            spy.wait()
        for g in graders:
            g.close_hold(rec)
        leases += rec.leases
        report_table(
            rec,
            f"{len(graders)} graders, pauses of {args.think_ms:g} ms on average, for "
            f"{elapsed:.1f} s: client ms, server ms",
        )

        capacity = Recorder()
        capacity_s, capacity_cpu = 0.0, {}
        if args.capacity_duration > 0:
            for g in graders:
                g.think_s = 0.0
            log(f"capacity: {len(graders)} graders without pauses for {args.capacity_duration:g} s")
            c0 = cpu_snapshot(pids, args.db)
            capacity_s = run_graders(graders, capacity, args.capacity_duration, not args.no_follow)
            c1 = cpu_snapshot(pids, args.db)
            capacity_cpu = {k: (c1[k] - c0[k]) / capacity_s for k in c0}
            for g in graders:
                g.close_hold(capacity)
            leases += capacity.leases
            report_table(
                capacity,
                f"capacity: {len(graders)} graders without pauses (closed loop) for "
                f"{capacity_s:.1f} s: client ms, server ms",
            )

        # What the workers still owe once the graders stop: how long until every commit's
        # disagreements and gold label are up to date.
        t_end = time.perf_counter()
        stale_left = stale_proofs(db_url)
        while stale_left and args.cpu_workers and time.perf_counter() - t_end < 120:
            time.sleep(0.25)
            stale_left = stale_proofs(db_url)
        stale_drain_s = time.perf_counter() - t_end

    if args.samples:
        t0 = min((t[1] for t in rec.timeline), default=0.0)
        with open(args.samples, "w") as f:
            for step, start, end, server_ms, status in rec.timeline:
                f.write(
                    json.dumps(
                        {
                            "step": step,
                            "start_s": round(start - t0, 4),
                            "client_ms": round((end - start) * 1000, 2),
                            "server_ms": server_ms,
                            "status": status,
                        }
                    )
                    + "\n"
                )
    server_log = "".join(f.read_text(errors="replace") for f in sorted(workdir.glob("daphne*.log")))
    failures = summarize_server_errors(server_log)
    if failures:
        print("\nserver errors (from the server log):")
        for line, count in failures.most_common(5):
            print(f"  {count:>5} x {line[:200]}")
    requests = sum(len(v) for v in rec.samples.values())
    errors = sum(rec.errors.values())
    doubles = double_leases(leases)
    repeats = warm.repeats + solo.repeats + rec.repeats
    repeats += capacity.repeats
    checks = db_checks(db_url, campaign_ids)
    cpu = {k: (cpu1[k] - cpu0[k]) / elapsed for k in cpu0}
    cpu["other"] = max(0.0, cpu["busy"] - cpu["client"] - cpu["server"] - cpu["postgres"])
    # Exited backends: any database's (the server's pool keeps its own connections open).
    items = len(rec.samples.get("submit", [])) - rec.errors.get("submit", 0)
    print(
        f"\npaced: requests: {requests} in {elapsed:.1f} s = {requests / elapsed:.1f}/s; "
        f"items graded: {items} ({items / elapsed:.1f}/s); "
        f"errors: {dict(rec.errors) or 0}"
    )
    for example in rec.error_examples:
        print("  ", example)
    capacity_requests = sum(len(v) for v in capacity.samples.values())
    capacity_items = len(capacity.samples.get("submit", [])) - capacity.errors.get("submit", 0)
    if capacity_s:
        print(
            f"capacity: requests: {capacity_requests} in {capacity_s:.1f} s = "
            f"{capacity_requests / capacity_s:.1f}/s; items graded: {capacity_items} "
            f"({capacity_items / capacity_s:.1f}/s); errors: {dict(capacity.errors) or 0}; "
            f"server (daphne) {capacity_cpu['server']:.2f} + PostgreSQL "
            f"{capacity_cpu['postgres']:.2f} cores"
        )
        for example in capacity.error_examples:
            print("  ", example)
    print(
        f"leases: {len(leases)} recorded by the client, double leases {doubles}, "
        f"same item twice to one grader {repeats}; database samples {sampler.samples}, "
        f"graders with two live leases {sampler.violations}, "
        f"most live leases {sampler.max_leased}"
    )
    print(f"server connections to PostgreSQL: at most {sampler.max_connections} seen")
    print(
        f"stale proofs (commits whose disagreements and gold label wait for the {args.cpu_workers}"
        f" cpu worker(s)): at most {sampler.max_stale} seen; {stale_left} left "
        f"{stale_drain_s:.1f} s after the load"
    )
    print(f"database after the run: {checks}")
    print(
        f"CPU during the paced load, in cores (of {os.cpu_count()}): "
        f"machine busy {cpu['busy']:.2f} = server (daphne) {cpu['server']:.2f} + "
        f"PostgreSQL {cpu['postgres']:.2f} + "
        f"bench client {cpu['client']:.2f} + other processes {cpu['other']:.2f} (of which "
        f"exited PostgreSQL backends of any database {cpu['pg_exited']:.2f}); "
        f"load average {load0:.1f} at start"
    )

    def p95(step: str, server: bool = False) -> float:
        rows = rec.samples.get(step, [])
        vals = [s for _, s in rows if s is not None] if server else [c for c, _ in rows]
        return round(pct(vals, 95), 1)

    return {
        "p95_page_ms": p95("page"),
        "p95_submit_ms": p95("submit"),
        "p95_claim_ms": p95("claim"),
        "p95_autosave_ms": p95("autosave"),
        "requests_per_s": round(requests / elapsed, 1),
        "double_leases": doubles,
        "srv_p95_page_ms": p95("page", True),
        "srv_p95_submit_ms": p95("submit", True),
        "srv_p95_claim_ms": p95("claim", True),
        "srv_p95_autosave_ms": p95("autosave", True),
        "solo_p50_page_ms": round(pct([c for c, _ in solo.samples["page"]], 50), 1),
        "solo_p50_submit_ms": round(pct([c for c, _ in solo.samples["submit"]], 50), 1),
        "items_per_s": round(items / elapsed, 1),
        "capacity_requests_per_s": round(capacity_requests / capacity_s, 1) if capacity_s else 0,
        "capacity_items_per_s": round(capacity_items / capacity_s, 1) if capacity_s else 0,
        "capacity_p95_page_ms": round(pct([c for c, _ in capacity.samples.get("page", [])], 95), 1),
        "errors": errors
        + sum(warm.errors.values())
        + sum(solo.errors.values())
        + sum(capacity.errors.values()),
        "repeat_items": repeats,
        "grader_with_two_leases": sampler.violations,
        "committed_mismatch": checks["committed_mismatch"],
        "overgraded_items": checks["overgraded_items"],
        "graders": len(graders),
        "server_procs": args.server_procs,
        "settings": args.settings or "proofdesk.settings",
        "think_ms": args.think_ms,
        "cpu_other_cores": round(cpu["other"], 2),
        "cpu_workers": args.cpu_workers,
        "stale_max": sampler.max_stale,
        "stale_left": stale_left,
        "stale_drain_s": round(stale_drain_s, 1),
        "duration_s": round(elapsed, 1),
    }


if __name__ == "__main__":
    sys.exit(main())
