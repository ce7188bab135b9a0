"""Import benchmark (issue 2): our importer against PostgreSQL's own COPY.

    .venv/bin/python bench/import_bench.py            # 100,000 proofs
    .venv/bin/python bench/import_bench.py --quick    # 2,000 proofs, well under a minute

1. Creates a scratch database (`proofdesk_bench_import` on the server of DATABASE_URL, default
   postgres://postgres@127.0.0.1:5432/postgres) and migrates it.
2. Generates a native JSONL file of N proofs (3–10 kB of Markdown + LaTeX each) for
   N / 100 problems; each problem's first line carries its statement, later lines only
   reference it.
3. Runs `manage.py import_data --format native FILE` in a child process, exactly as a
   user would, and takes its wall time (Django start-up included) and its peak RSS.
4. Times `COPY ... FROM STDIN` of the same proof rows (same columns and values as the
   import writes into annotate_proof, pre-serialised to COPY text) into a scratch table
   created `LIKE annotate_proof` with its indexes and constraints.
5. Prints `RESULT key=value ...` and drops the database (unless --keep).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
COPY_COLUMNS = (
    "id, problem_id, external_id, text, content_hash, generator_model, generator_version, "
    "sampling, human_author, self_evaluation, self_score, metadata, created_at"
)
BENCH_DB = "proofdesk_bench_import"  # other benches use proofdesk_bench

WORDS = (
    "Let be a positive integer and consider the set of all such that the sum is divisible by "
    "prime. We claim that the answer is exactly and prove both directions. Suppose for "
    "contradiction that there exists a counterexample; take the smallest one. By the "
    "pigeonhole principle two of them coincide, hence the triangle is isosceles and the "
    "circumcircle passes through the midpoint. Therefore the inequality holds with equality "
    "if and only if all variables are equal. This completes the proof of the lemma."
).split()
MATH = (
    r"$n \ge 3$",
    r"$a_i + a_j \equiv 0 \pmod p$",
    r"$\frac{a+b}{2} \ge \sqrt{ab}$",
    r"$\angle ABC = 90^\circ$",
    r"$f(x+y) = f(x) + f(y)$",
    r"$\sum_{k=1}^{n} k^2$",
    r"$\gcd(m, n) = 1$",
    r"$x^2 + y^2 + z^2 \ge xy + yz + zx$",
    r"$|S| \le 2^{n-1}$",
)


def sentence_pool(rng: random.Random, size: int = 4000) -> list[str]:
    pool = []
    for _ in range(size):
        words = rng.choices(WORDS, k=rng.randint(8, 20))
        words.insert(rng.randrange(len(words)), rng.choice(MATH))
        pool.append(" ".join(words).capitalize() + ".")
    return pool


def proof_text(rng: random.Random, pool: list[str], n: int) -> str:
    target = rng.randint(3000, 10000)
    parts = [f"**Proof {n}.**\n"]
    size = len(parts[0])
    while size < target:
        paragraph = " ".join(rng.choices(pool, k=6))
        if rng.random() < 0.2:
            paragraph += f"\n\n$$\\sum_{{i=1}}^{{{n % 97 + 2}}} a_i^2 \\ge {rng.randint(1, 999)}$$"
        parts.append(paragraph)
        size += len(paragraph) + 2
    return "\n\n".join(parts)[:target]


def copy_escape(value: str) -> str:
    return (
        value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    )


def generate(rows: int, problems: int, jsonl: Path, copy_file: Path) -> int:
    """Write the JSONL to import and the same proof rows in COPY text format."""
    rng = random.Random(2025)
    pool = sentence_pool(rng)
    sampling = json.dumps({"temperature": 1.0})
    now = datetime.now(UTC).isoformat()
    total = 0
    with jsonl.open("w", encoding="utf-8") as out, copy_file.open("w", encoding="utf-8") as cp:
        for n in range(rows):
            index = n % problems
            problem: dict = {"external_id": f"BENCH-{index:05d}"}
            if n < problems:
                problem.update(
                    statement=f"Problem {index}: " + " ".join(rng.choices(pool, k=3)),
                    category="algebra",
                    source="bench",
                )
            text = proof_text(rng, pool, n)
            total += len(text.encode())
            line = {
                "problem": problem,
                "proof": {
                    "text": text,
                    "generator": {
                        "model": "bench-model",
                        "version": "1",
                        "sampling": {"temperature": 1.0},
                    },
                },
            }
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            digest = hashlib.sha256(text.encode()).hexdigest()
            fields = [
                str(n + 1),
                str(index + 1),
                "",
                copy_escape(text),
                digest,
                "bench-model",
                "1",
                sampling,
                "",
                "",
                "\\N",
                "{}",
                now,
            ]
            cp.write("\t".join(fields) + "\n")
    return total


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run `cmd`; return (wall seconds, peak RSS in MB of that child alone)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{' '.join(cmd)} exited with {code}")
    return wall, usage.ru_maxrss / 1024  # Linux reports kB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 proofs")
    parser.add_argument("--rows", type=int, help="number of proofs (default 100,000)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    rows = args.rows or (2_000 if args.quick else 100_000)
    problems = max(1, rows // 100)

    server = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
    if not server.startswith(("postgres://", "postgresql://")):
        sys.exit("DATABASE_URL must point at a PostgreSQL server")
    base, _, _ = server.rpartition("/")
    bench_url = f"{base}/{BENCH_DB}"
    # Held for the whole run: a busy shared server may have no connection left at the end.
    admin = psycopg.connect(server, autocommit=True)
    admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
    admin.execute(f"CREATE DATABASE {BENCH_DB}")
    env = {
        **os.environ,
        "DATABASE_URL": bench_url,
        "SECRET_KEY": secrets.token_urlsafe(40),
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    python = sys.executable
    run([python, "manage.py", "migrate", "--noinput", "-v0"], env)

    with tempfile.TemporaryDirectory(prefix="proofdesk-bench-") as tmp:
        jsonl, copy_file = Path(tmp) / "proofs.jsonl", Path(tmp) / "proofs.copy"
        t0 = time.perf_counter()
        text_bytes = generate(rows, problems, jsonl, copy_file)
        print(
            f"generated {rows} proofs ({text_bytes / 1e6:.0f} MB of text, file "
            f"{jsonl.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f}s",
            flush=True,
        )
        with psycopg.connect(bench_url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
        import_s, peak_rss_mb = run(
            [python, "manage.py", "import_data", "--format", "native", str(jsonl), "--no-progress"],
            env,
        )
        with psycopg.connect(bench_url, autocommit=True) as conn:
            imported = conn.execute("SELECT count(*) FROM annotate_proof").fetchone()[0]
            if imported != rows:
                sys.exit(f"imported {imported} proofs, expected {rows}")
            conn.execute(
                "CREATE TABLE bench_copy_scratch (LIKE annotate_proof INCLUDING DEFAULTS "
                "INCLUDING CONSTRAINTS INCLUDING INDEXES)"
            )
            conn.execute("CHECKPOINT")
            start = time.perf_counter()
            with conn.transaction(), conn.cursor() as cur:
                with cur.copy(f"COPY bench_copy_scratch ({COPY_COLUMNS}) FROM STDIN") as copy:
                    with copy_file.open("rb") as f:
                        while block := f.read(1024**2):
                            copy.write(block)
            copy_s = time.perf_counter() - start
            copied = conn.execute("SELECT count(*) FROM bench_copy_scratch").fetchone()[0]
            if copied != rows:
                sys.exit(f"COPY loaded {copied} rows, expected {rows}")

    if not args.keep:
        admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
    admin.close()
    bench_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"RESULT rows={rows} text_mb={text_bytes / 1e6:.0f} import_s={import_s:.2f} "
        f"copy_s={copy_s:.2f} import_rows_per_s={rows / import_s:.0f} "
        f"copy_rows_per_s={rows / copy_s:.0f} ratio_to_copy={import_s / copy_s:.2f} "
        f"peak_rss_mb={peak_rss_mb:.0f} bench_driver_rss_mb={bench_rss_mb:.0f}"
    )


if __name__ == "__main__":
    main()
