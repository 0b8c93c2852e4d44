"""``hashkit recipe validate`` wall time against the floor of any hashkit command (``import torch``).

Runs, alternately and ``--repeats`` times each, ``python -c "import torch"`` and ``python -m hashkit.cli.main
recipe validate RECIPE`` (a fresh process each time, as a user runs it) and prints the median wall and CPU
seconds of both and their ratio. The validate run builds the model of every code length on the meta device,
the losses, the protocol and the metrics.

    python benchmarks/bench_validate.py recipes/semicon.toml --repeats 5
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time


def run(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system of the child) seconds of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", nargs="?", default="recipes/semicon.toml")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    floor, validate = [], []
    for _ in range(args.repeats):
        floor.append(run([sys.executable, "-c", "import torch"]))
        validate.append(run([sys.executable, "-m", "hashkit.cli.main", "recipe", "validate", args.recipe]))
    for label, runs in (("import torch", floor), (f"recipe validate {args.recipe}", validate)):
        print(f"{label:<45} wall {statistics.median(w for w, _ in runs):6.2f} s   "
              f"cpu {statistics.median(c for _, c in runs):6.2f} s")
    ratio = statistics.median(w for w, _ in validate) / statistics.median(w for w, _ in floor)
    print(f"validate / import torch (wall): {ratio:.2f}x   load average: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
