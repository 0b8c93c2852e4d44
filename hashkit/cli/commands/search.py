"""``hashkit search CODES --query IMAGE|CODES -k 10 [--radius R] [--json]``: Hamming search in a code file.

The query is either another code file (every code in it is a query) or an image, encoded with the run that
wrote ``CODES`` (its ``extra.run_dir`` metadata) or the one given by ``--model``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("search", help="search a code file by Hamming distance (kNN or radius)",
                       description="Find the nearest codes of a code file for query codes or a query image.")
    p.add_argument("codes", type=Path, metavar="CODES", help="code file to search (from hashkit encode)")
    p.add_argument("--query", type=Path, required=True, metavar="IMAGE|CODES",
                   help="a query image, or a code file whose codes are all queries")
    p.add_argument("-k", type=int, default=10, help="neighbours per query (kNN; default 10)")
    p.add_argument("--radius", type=int, default=None, help="return every code within this Hamming radius instead")
    p.add_argument("--backend", default="exact",
                   help="exact (default), faiss-flat, faiss-ivf, faiss-hnsw, faiss-multihash")
    p.add_argument("--model", type=Path, default=None,
                   help="run directory to encode a query image (default: the run recorded in CODES)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def _query_codes(args, database):
    from hashkit.codes.code_file import load_code_file
    from hashkit.errors import CodeFileError
    from hashkit.codes.packing import pack_codes

    if args.query.suffix == ".safetensors":
        qfile = load_code_file(args.query)
        if qfile.num_bits != database.num_bits:
            raise CodeFileError(f"{args.query}: {qfile.num_bits}-bit query codes cannot search "
                                f"{database.num_bits}-bit codes in {args.codes}")
        names = list(qfile.paths) if qfile.paths else [str(int(i)) for i in qfile.ids]
        return qfile.codes.numpy(), names
    from hashkit.cli.commands.encode import encode_images, pick_device
    from hashkit.data.transforms import build_transform
    from hashkit.runs import load_run

    run_dir = args.model or database.metadata.get("extra.run_dir")
    if not run_dir:
        raise CodeFileError(f"{args.codes}: records no run to encode an image query with; pass --model RUN")
    loaded = load_run(Path(run_dir), database.num_bits)
    codes = encode_images(loaded.model, build_transform(loaded.recipe.data.eval_transform), args.query.parent,
                          [args.query.name], batch_size=1, num_workers=0, device=pick_device("auto"),
                          progress=False)
    return pack_codes(codes).numpy(), [str(args.query)]


def run(args: argparse.Namespace) -> int:
    from hashkit.codes.code_file import load_code_file
    from hashkit.search import make_backend

    database = load_code_file(args.codes)
    queries, names = _query_codes(args, database)
    backend = make_backend(args.backend, database.num_bits)
    backend.add(database.codes.numpy(), database.ids.numpy())
    position = {int(i): p for p, i in enumerate(database.ids.tolist())}

    def label(item_id: int) -> str:
        return database.paths[position[item_id]] if database.paths else str(item_id)

    hits = []
    if args.radius is not None:
        res = backend.radius(queries, args.radius)
        for qi in range(len(queries)):
            ids, dist = res.query(qi)
            hits.append(list(zip(ids.tolist(), dist.tolist())))
    else:
        res = backend.knn(queries, args.k)
        hits = [[(int(i), int(d)) for i, d in zip(ids, dist) if i >= 0]
                for ids, dist in zip(res.ids, res.distances)]
    out = [{"query": name, "results": [{"id": i, "path": label(i), "distance": d} for i, d in row]}
           for name, row in zip(names, hits)]
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for entry in out:
            print(f"query {entry['query']}:")
            for rank, hit in enumerate(entry["results"], 1):
                print(f"  {rank:4d}  d={hit['distance']:3d}  {hit['path']}")
    return 0
