"""Exact top-k Hamming search: hashkit's exact popcount backend against faiss ``IndexBinaryFlat``.

1,000,000 random 64-bit codes, 1,000 random queries, k = 100, the same thread count for both. Checks that
both return the same sorted distances and the same neighbour sets (up to the choice among items tied at
the k-th distance), then prints ms/query and the ratio.

    OMP_NUM_THREADS=2 python benchmarks/bench_search.py --threads 2
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("-k", type=int, default=100)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import faiss

    from hashkit.search.exact import ExactBackend

    rng = np.random.default_rng(args.seed)
    nbytes = args.bits // 8
    db = rng.integers(0, 256, (args.database, nbytes), dtype=np.uint8)
    q = rng.integers(0, 256, (args.queries, nbytes), dtype=np.uint8)
    print(f"exact top-{args.k}: {args.queries} queries x {args.database} codes of {args.bits} bits, "
          f"{args.threads} thread(s), cpu count {os.cpu_count()}, load {os.getloadavg()[0]:.2f}")

    faiss.omp_set_num_threads(args.threads)
    index = faiss.IndexBinaryFlat(args.bits)
    index.add(db)
    t = time.perf_counter()
    f_dist, f_ids = index.search(q, args.k)
    t_faiss = time.perf_counter() - t

    backend = ExactBackend(args.bits, threads=args.threads)
    backend.add(db)
    t = time.perf_counter()
    res = backend.knn(q, args.k)
    t_exact = time.perf_counter() - t

    same_dist = np.array_equal(np.sort(f_dist, axis=1), res.distances)
    same_sets = all(set(f_ids[i][f_dist[i] < f_dist[i].max()]) == set(res.ids[i][res.distances[i] < f_dist[i].max()])
                    for i in range(args.queries))
    same_ids = float(np.mean([set(f_ids[i]) == set(res.ids[i]) for i in range(args.queries)]))
    print(f"faiss IndexBinaryFlat : {1000 * t_faiss / args.queries:8.3f} ms/query ({t_faiss:.2f} s)")
    print(f"hashkit exact backend : {1000 * t_exact / args.queries:8.3f} ms/query ({t_exact:.2f} s)")
    print(f"ratio exact / faiss   : {t_exact / t_faiss:8.2f}x")
    print(f"same sorted distances: {same_dist}; same neighbours below the k-th distance: {same_sets}; "
          f"identical id sets (ties at the k-th distance may pick different items): {same_ids:.3f}")
    if not (same_dist and same_sets):
        raise SystemExit("MISMATCH between hashkit exact search and faiss")


if __name__ == "__main__":
    main()
