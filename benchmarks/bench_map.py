"""mAP@all on a CUB-sized problem: ``hashkit.evaluation.evaluate`` against a per-query numpy argsort loop.

5,794 queries x 5,994 database items, 200 classes, class-centred codes with 20 % bit flips (so the mAP is
in the range of real models), 12 and 48 bits. The reference ranks each query separately like
DeepHash-pytorch's ``CalcMap`` (one-hot label product for relevance, d = (L - q.B)/2, argsort, cumulative
precision at the relevant positions) but with a *stable* argsort, so ties are broken by database index as in
hashkit's ``map``; both values must agree to 1e-9.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/bench_map.py --threads 1   # both single-threaded
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/bench_map.py --threads 2   # hashkit on 2 threads
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch


def reference_map(q: np.ndarray, d: np.ndarray, yq: np.ndarray, yd: np.ndarray) -> float:
    """Per-query loop: relevance by one-hot product, Hamming by inner product, stable argsort."""
    bits = q.shape[1]
    aps = np.zeros(len(q))
    for i in range(len(q)):
        rel = (yd @ yq[i]) > 0
        dist = 0.5 * (bits - d @ q[i])
        ranked = rel[np.argsort(dist, kind="stable")]
        total = ranked.sum()
        if total == 0:
            continue
        hits = np.cumsum(ranked)[ranked]
        positions = np.flatnonzero(ranked) + 1.0
        aps[i] = np.mean(hits / positions)
    return float(aps.mean())


def make_problem(rng, nq: int, nd: int, classes: int, bits: int, flip: float):
    centres = rng.choice([-1.0, 1.0], (classes, bits))
    lq, ld = rng.integers(0, classes, nq), rng.integers(0, classes, nd)

    def noisy(labels):
        return centres[labels] * np.where(rng.random((len(labels), bits)) < flip, -1.0, 1.0)

    return noisy(lq), noisy(ld), np.eye(classes)[lq], np.eye(classes)[ld]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=5794)
    parser.add_argument("--database", type=int, default=5994)
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--bits", type=int, nargs="+", default=[12, 48])
    parser.add_argument("--flip", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    parser.add_argument("--repeats", type=int, default=3, help="hashkit timing: best of this many runs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from hashkit.evaluation import evaluate
    from hashkit.interfaces import RetrievalProblem

    torch.set_num_threads(args.threads)
    print(f"mAP@all: {args.queries} queries x {args.database} database, {args.classes} classes, "
          f"{args.threads} thread(s), cpu count {os.cpu_count()}, load {os.getloadavg()[0]:.2f}")
    rng = np.random.default_rng(args.seed)
    failed = False
    for bits in args.bits:
        q, d, yq, yd = make_problem(rng, args.queries, args.database, args.classes, bits, args.flip)
        problem = RetrievalProblem(torch.from_numpy(q).float(), torch.from_numpy(d).float(),
                                   torch.from_numpy(yq).float(), torch.from_numpy(yd).float())
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            res = evaluate(problem, num_threads=args.threads)
            times.append(time.perf_counter() - t)
        t = time.perf_counter()
        ref = reference_map(q, d, yq, yd)
        t_ref = time.perf_counter() - t
        best = min(times)
        diff = abs(res["map"] - ref)
        failed |= diff > 1e-9
        print(f"{bits:3d} bits: hashkit {best:.3f} s (runs {', '.join(f'{x:.3f}' for x in times)}), "
              f"reference {t_ref:.2f} s ({1000 * t_ref / args.queries:.2f} ms/query), "
              f"speed-up {t_ref / best:.0f}x; map {res['map']:.12f} vs {ref:.12f} (|diff| {diff:.1e}); "
              f"map_tie_aware {res['map_tie_aware']:.6f}; no-relevant queries {res['no_relevant_queries']}")
    print(f"load after: {os.getloadavg()[0]:.2f}")
    if failed:
        raise SystemExit("MISMATCH: hashkit map differs from the reference by more than 1e-9")


if __name__ == "__main__":
    main()
