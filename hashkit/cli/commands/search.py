"""``hashkit search CODES --query IMAGE|CODES -k 10 [--radius R] [--rerank] [--json]``: Hamming search in a code file.

The query is either another code file (every code in it is a query) or an image, encoded with the run that
wrote ``CODES`` (its ``extra.run_dir`` metadata) or the one given by ``--model``.

``--rerank`` is the usual two-stage search: the ``--candidates`` nearest codes by Hamming distance (default
``max(100, 10 k)``) are re-ordered by the cosine similarity of the real-valued descriptors, which breaks the
many ties of short codes. It needs descriptors in ``CODES`` (``hashkit encode --descriptors``) and, for a
code-file query, in the query file too.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from hashkit.cli.args import add_image_options


def add_parser(sub) -> None:
    p = sub.add_parser("search", help="search a code file by Hamming distance (kNN or radius)",
                       description="Find the nearest codes of a code file for query codes or a query image.")
    p.add_argument("codes", type=Path, metavar="CODES", help="code file to search (from hashkit encode)")
    p.add_argument("--query", type=Path, required=True, metavar="IMAGE|CODES",
                   help="a query image, or a code file whose codes are all queries")
    p.add_argument("-k", type=int, default=10, help="neighbours per query (kNN; default 10)")
    p.add_argument("--radius", type=int, default=None, help="return every code within this Hamming radius instead")
    p.add_argument("--rerank", action="store_true",
                   help="re-rank the Hamming candidates by descriptor cosine similarity (needs encode --descriptors)")
    p.add_argument("--candidates", type=int, default=None, metavar="M",
                   help="Hamming candidates re-ranked with --rerank (default max(100, 10 k))")
    p.add_argument("--backend", default="exact",
                   help="exact (default), faiss-flat, faiss-ivf, faiss-hnsw, faiss-multihash")
    p.add_argument("--model", type=Path, default=None,
                   help="run directory to encode a query image (default: the run recorded in CODES)")
    p.add_argument("--device", default="auto", help="device to encode a query image on (auto, cpu, cuda, ...)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_image_options(p)
    p.set_defaults(func=run)


def _query_codes(args, database):
    """``(packed query codes, names, query descriptors or None)``."""
    from hashkit.cli.commands.encode import pick_device, warn
    from hashkit.codes.code_file import load_code_file
    from hashkit.codes.encoder import batch_warning, encode_images
    from hashkit.codes.packing import pack_codes
    from hashkit.data.readers import FileImageReader
    from hashkit.data.transforms import build_transform
    from hashkit.errors import CodeFileError
    from hashkit.runs import load_run

    if args.query.suffix == ".safetensors":
        qfile = load_code_file(args.query)
        if qfile.num_bits != database.num_bits:
            raise CodeFileError(f"{args.query}: {qfile.num_bits}-bit query codes cannot search "
                                f"{database.num_bits}-bit codes in {args.codes}")
        if args.rerank and qfile.descriptors is None:
            raise CodeFileError(f"{args.query}: --rerank needs the query descriptors (encode with --descriptors)")
        names = list(qfile.paths) if qfile.paths else [str(int(i)) for i in qfile.ids]
        desc = qfile.descriptors.numpy() if qfile.descriptors is not None else None
        return qfile.codes.numpy(), names, desc
    run_dir = args.model or database.metadata.get("extra.run_dir")
    if not run_dir:
        raise CodeFileError(f"{args.codes}: records no run to encode an image query with; pass --model RUN")
    loaded = load_run(Path(run_dir), database.num_bits)
    message = batch_warning(loaded.model)
    if message:
        warn(message)
    res = encode_images(loaded.model, build_transform(loaded.recipe.data.eval_transform),
                        FileImageReader(args.query.parent), [args.query.name], batch_size=1,
                        device=pick_device(args.device), descriptors=args.rerank)
    desc = res.descriptors.numpy() if res.descriptors is not None else None
    return pack_codes(res.codes).numpy(), [str(args.query)], desc


def rerank(candidates: list[list[tuple[int, int]]], query_desc: np.ndarray, db_desc: np.ndarray,
           position: dict[int, int], k: int) -> list[list[tuple[int, int, float]]]:
    """Each query's ``(id, distance)`` candidates ordered by decreasing cosine similarity of the descriptors
    (ties: Hamming distance, then candidate order), cut to ``k``: ``(id, distance, cosine)``."""
    def unit(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        norm = np.linalg.norm(x, axis=-1, keepdims=True)
        return x / np.where(norm > 0, norm, 1.0)

    q, db = unit(query_desc), unit(db_desc)
    out = []
    for qi, row in enumerate(candidates):
        scored = [(float(q[qi] @ db[position[i]]), d, rank, i) for rank, (i, d) in enumerate(row)]
        scored.sort(key=lambda t: (-t[0], t[1], t[2]))
        out.append([(i, d, s) for s, d, _, i in scored[:k]])
    return out


def run(args: argparse.Namespace) -> int:
    from hashkit.codes.code_file import load_code_file, printable_path
    from hashkit.errors import CodeFileError, HashkitError
    from hashkit.search import make_backend

    if args.k <= 0:
        raise HashkitError(f"-k must be > 0, found {args.k}")
    if args.rerank and args.radius is not None:
        raise HashkitError("--rerank re-orders k-nearest candidates; it does not combine with --radius")
    database = load_code_file(args.codes)
    if args.rerank and database.descriptors is None:
        raise CodeFileError(f"{args.codes}: --rerank needs descriptors in the code file (hashkit encode --descriptors)")
    queries, names, query_desc = _query_codes(args, database)
    backend = make_backend(args.backend, database.num_bits)
    backend.add(database.codes.numpy(), database.ids.numpy())
    position = {int(i): p for p, i in enumerate(database.ids.tolist())}

    def label(item_id: int) -> str:
        return database.paths[position[item_id]] if database.paths else str(item_id)

    if args.radius is not None:
        res = backend.radius(queries, args.radius)
        hits = []
        for qi in range(len(queries)):
            ids, dist = res.query(qi)
            hits.append([(int(i), int(d), None) for i, d in zip(ids.tolist(), dist.tolist())])
    else:
        wanted = max(args.candidates or max(100, 10 * args.k), args.k) if args.rerank else args.k
        res = backend.knn(queries, min(wanted, len(database)))
        hits = [[(int(i), int(d)) for i, d in zip(ids, dist) if i >= 0] for ids, dist in zip(res.ids, res.distances)]
        if args.rerank:
            hits = rerank(hits, query_desc, database.descriptors.numpy(), position, args.k)
        else:
            hits = [[(i, d, None) for i, d in row] for row in hits]
    out = [{"query": name, "results": [{"id": i, "path": label(i), "distance": d,
                                        **({"cosine": s} if s is not None else {})} for i, d, s in row]}
           for name, row in zip(names, hits)]
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for entry in out:
            print(f"query {printable_path(entry['query'])}:")
            for rank, hit in enumerate(entry["results"], 1):
                score = f"  cos={hit['cosine']:.4f}" if "cosine" in hit else ""
                print(f"  {rank:4d}  d={hit['distance']:3d}{score}  {printable_path(hit['path'])}")
    return 0
