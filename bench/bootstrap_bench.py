"""Agreement metrics with their cluster bootstrap (issue 11), on synthetic pairs, no database.

    .venv/bin/python bench/bootstrap_bench.py                      # 100,000 proofs
    .venv/bin/python bench/bootstrap_bench.py --quick              # 10,000 proofs
    .venv/bin/python bench/bootstrap_bench.py --proofs 1000000 --problems 20000

Times `verification.agreement.metrics` (every metric, 95 % intervals from `--resamples`
resamples of problems) on one comparison of `--proofs` expert/verifier pairs spread over
`--problems` problems, 70 % exact agreement. Prints
`RESULT proofs=… problems=… resamples=… point_s=… bootstrap_s=… point_cpu_s=…
bootstrap_cpu_s=…` (best of three).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from verification.agreement import Pairs, metrics  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proofs", type=int, default=100_000)
    parser.add_argument("--problems", type=int, default=10_000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="10,000 proofs, 1,000 problems")
    args = parser.parse_args()
    if args.quick:
        args.proofs, args.problems = 10_000, 1_000
    rng = np.random.default_rng(0)
    n = args.proofs
    ref = rng.integers(0, 3, n)
    cand = np.where(rng.random(n) < 0.7, ref, rng.integers(0, 3, n))
    cluster = rng.integers(0, args.problems, n)
    pairs = Pairs(np.arange(n), cluster, np.zeros(n, int), ref, np.ones(n, int), cand)

    def best(resamples: int) -> tuple[float, float]:
        """Best wall and CPU seconds of three runs (CPU time is steadier on a shared box)."""
        wall, cpu = [], []
        for _ in range(3):
            start, start_cpu = time.perf_counter(), time.process_time()
            metrics(pairs, resamples=resamples)
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        return min(wall), min(cpu)

    (point, point_cpu), (boot, boot_cpu) = best(0), best(args.resamples)
    print(
        f"RESULT proofs={n} problems={args.problems} resamples={args.resamples} "
        f"point_s={point:.2f} bootstrap_s={boot:.2f} "
        f"point_cpu_s={point_cpu:.2f} bootstrap_cpu_s={boot_cpu:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
