"""``hashkit serve CODES... | RUN --images DIR [--host 127.0.0.1 --port 8000]``: a search service with a web page.

Loads the code files (or encodes ``--images`` with every code length of a run directory) and the model once,
then serves the JSON API and the page of :mod:`hashkit.serve.app` with uvicorn until interrupted. It binds
to localhost unless ``--host`` says otherwise, reads images only from the ``--images`` folder, and bounds
request size, image size, queries per request and k (see ``--help``).
"""

from __future__ import annotations

import argparse
import ipaddress
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="serve code files (search API + web page) on localhost",
                       description="Search code files by uploaded image, database id or code through a JSON API "
                                   "and a web page.")
    p.add_argument("sources", type=Path, nargs="+", metavar="RUN_OR_CODES",
                   help="code files from hashkit encode (one per code length), or one run directory whose "
                        "--images folder is encoded at start-up")
    p.add_argument("--images", type=Path, default=None, metavar="DIR",
                   help="the image folder the code files' paths are relative to (default: recorded in the file)")
    p.add_argument("--model", type=Path, default=None, metavar="RUN",
                   help="run directory that encodes uploaded images (default: the run recorded in the code file)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("-k", type=int, default=10, help="default number of results (default 10)")
    p.add_argument("--max-upload-mb", type=float, default=8.0, help="largest request body in MiB (default 8)")
    p.add_argument("--max-batch", type=int, default=16, help="images per forward pass (default 16)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hashkit.errors import HashkitError
    from hashkit.serve import require_web

    require_web()
    import torch
    import uvicorn

    from hashkit.serve.app import create_app
    from hashkit.serve.service import Settings, load_service

    if args.max_upload_mb <= 0 or args.k < 1 or args.max_batch < 1:
        raise HashkitError("--max-upload-mb, -k and --max-batch must be positive")
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = Settings(max_request_bytes=int(args.max_upload_mb * 2**20), default_k=args.k, max_batch=args.max_batch)
    service = load_service(args.sources, args.images, args.model, settings)
    try:
        public = not ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        public = args.host != "localhost"
    if public:
        print(f"warning: binding to {args.host}: other machines can reach the service (no authentication)")
    lengths = ", ".join(f"{b} bits ({len(service.collection.index(b))} codes)" for b in service.collection.code_lengths)
    print(f"serving {lengths} on http://{args.host}:{args.port}/ (Ctrl-C to stop)")
    uvicorn.run(create_app(service), host=args.host, port=args.port, log_level="warning")
    return 0
