"""Latency of ``hashkit serve`` on the demo codes: p50 / p99 over N requests per kind of search.

Writes the run's database split as image files, encodes them at every code length of the run (as
``hashkit encode`` does), starts ``hashkit serve CODES... --images DIR`` as a separate process on 127.0.0.1,
and sends N sequential requests of each kind from one keep-alive HTTP client: search by database id, by
code (hex), and by uploaded image (PNG, encoded by the model), all with k = 10 at the first code length.
The reference, measured in the same run, is the same search called in-process (no HTTP, no JSON): the ratio
is what serving adds.

    hashkit train semicon-demo --out runs/semicon-demo
    OMP_NUM_THREADS=1 python benchmarks/bench_serve.py runs/semicon-demo --requests 200
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ms = np.asarray(samples) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), float(ms.mean())


def timed(fn, count: int, warmup: int = 10) -> list[float]:
    for i in range(warmup):
        fn(i)
    out = []
    for i in range(count):
        start = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run directory (e.g. of semicon-demo)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    args = parser.parse_args()

    import httpx
    import torch

    from hashkit.cli.main import main as hashkit
    from hashkit.runs import run_code_lengths
    from hashkit.serve.service import load_service
    from hashkit.serve.uploads import decode_image

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    photos = work / "photos"
    assert hashkit(["data", "images", str(args.run / "recipe.toml"), "--split", "database", "--out", str(photos)]) == 0
    files = []
    for bits in run_code_lengths(args.run):
        files.append(work / f"codes{bits}.safetensors")
        assert hashkit(["encode", str(args.run), "--code-length", str(bits), "--images", str(photos),
                        "--out", str(files[-1]), "--no-progress"]) == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    server = subprocess.Popen([sys.executable, "-m", "hashkit.cli.main", "serve", *map(str, files), "--images",
                               str(photos), "--port", str(port), "--threads", str(args.threads)], env=env)
    url = f"http://127.0.0.1:{port}"
    service = load_service(files, photos, log=lambda _: None)  # the in-process reference
    try:
        with httpx.Client(base_url=url, trust_env=False, timeout=60) as http:
            started = time.perf_counter()
            while True:
                try:
                    if http.get("/api/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None or time.perf_counter() - started > 300:
                    raise SystemExit("the service did not start")
                time.sleep(0.2)
            index = service.collection.index(None)
            bits = index.num_bits
            rng = np.random.default_rng(0)
            ids = rng.choice(index.ids, size=args.requests + 10)
            hexes = [bytes(index.code_of(int(i))[0].tolist()).hex() for i in ids]
            pictures = sorted(photos.rglob("*.png"))
            uploads = [pictures[int(j)] for j in rng.integers(0, len(pictures), args.requests + 10)]
            upload_bytes = [p.read_bytes() for p in uploads]
            decoded = [decode_image(b) for b in upload_bytes]
            k = args.k
            kinds = {
                "search by id": (
                    lambda i: http.get(f"/api/search/id/{ids[i]}", params={"k": k, "bits": bits}).raise_for_status(),
                    lambda i: service.search_id(int(ids[i]), bits=bits, k=k)),
                "search by code": (
                    lambda i: http.post("/api/search/code", json={"codes": [hexes[i]], "bits": bits, "k": k}
                                        ).raise_for_status(),
                    lambda i: service.search_codes([hexes[i]], bits=bits, k=k)),
                "search by image": (
                    lambda i: http.post("/api/search/image", files={"image": ("q.png", upload_bytes[i], "image/png")},
                                        data={"k": str(k), "bits": str(bits)}).raise_for_status(),
                    lambda i: service.search_images([("q.png", decoded[i])], bits=bits, k=k)),
            }
            print(f"hashkit serve on {url}: {len(index)} codes of {bits} bits ({service.info()['code_lengths'][0]['recipe']}),"
                  f" k = {k}, {args.requests} sequential requests per kind, {args.threads} torch thread(s), "
                  f"cpu count {os.cpu_count()}, load {os.getloadavg()[0]:.2f}")
            print(f"{'':<16} {'served p50 ms':>13} {'p99 ms':>8} {'mean ms':>8}   {'in-process p50 ms':>17} "
                  f"{'p99 ms':>8}   {'served/in-process (p50)':>23}")
            for name, (served, direct) in kinds.items():
                s50, s99, smean = percentiles(timed(served, args.requests))
                d50, d99, _ = percentiles(timed(direct, args.requests))
                print(f"{name:<16} {s50:>13.2f} {s99:>8.2f} {smean:>8.2f}   {d50:>17.2f} {d99:>8.2f}   "
                      f"{s50 / d50:>22.1f}x")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
