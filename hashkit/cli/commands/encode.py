"""``hashkit encode CHECKPOINT_OR_RUN --images DIR|LIST --out codes.safetensors``: hash a collection of images.

The model comes from a run directory (or a ``L{bits}/checkpoint.safetensors`` inside one) through
:func:`hashkit.runs.load_run`, in eval mode, with the recipe's eval transform; images are encoded in batches
(GPU when present) and written as a code file (:mod:`hashkit.codes.code_file`) with their relative paths.

Before any image is read the output is checked (not a directory, not an existing file unless
``--overwrite``, writable). The collection is encoded in resumable chunks (:mod:`hashkit.codes.encode_job`):
running the same command again after a kill continues where it stopped. ``--skip-bad-images`` leaves
unreadable images out (listed on stderr and in the file's ``skipped`` metadata) instead of stopping at the
first; ``--descriptors`` also stores the real-valued descriptors for ``hashkit search --rerank``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from hashkit.cli.args import add_image_options

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def add_parser(sub) -> None:
    p = sub.add_parser("encode", help="encode images into a code file (packed hash codes + paths)",
                       description="Encode a directory or a list of images with a trained model and write the "
                                   "packed codes, relative paths and metadata to a safetensors code file.")
    p.add_argument("model", type=Path, metavar="CHECKPOINT_OR_RUN",
                   help="run directory, or L<bits>/checkpoint.safetensors inside one")
    p.add_argument("--images", type=Path, required=True, metavar="DIR|LIST",
                   help="a directory (searched recursively for images) or a text file with one path per line")
    p.add_argument("--root", type=Path, default=None,
                   help="directory the paths of a LIST are relative to (default: the list file's directory)")
    p.add_argument("--out", type=Path, required=True, help="code file to write (.safetensors)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing code file (and discard the "
                                                            "unfinished chunks of another encode into it)")
    p.add_argument("--code-length", type=int, default=None, help="code length of the run (default: its first)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--chunk-size", type=int, default=4096,
                   help="images per resumable chunk (default 4096; a killed encode redoes at most one chunk)")
    p.add_argument("--skip-bad-images", action="store_true",
                   help="leave unreadable images out (listed on stderr and in the file) instead of stopping")
    p.add_argument("--descriptors", action="store_true",
                   help="also store the real-valued descriptors (for hashkit search --rerank)")
    p.add_argument("--device", default="auto", help="auto (cuda when present), cpu, cuda, cuda:1, ...")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_image_options(p)
    p.set_defaults(func=run)


def resolve_model_path(path: Path) -> tuple[Path, int | None]:
    """``(run_dir, code_length)`` for a run directory or a checkpoint file inside ``L{bits}/``."""
    from hashkit.errors import CheckpointError

    if path.is_dir():
        return path, None
    if path.is_file():
        length_dir = path.parent
        if length_dir.name.startswith("L") and length_dir.name[1:].isdigit():
            return length_dir.parent, int(length_dir.name[1:])
        raise CheckpointError(f"{path}: a checkpoint must sit in a run's L<bits>/ directory")
    raise CheckpointError(f"{path}: no such run directory or checkpoint")


def list_images(images: Path, root: Path | None) -> tuple[Path, list[str]]:
    """``(root, relative paths)`` of the images named by a directory or a list file."""
    from hashkit.errors import DataError

    if images.is_dir():
        items = sorted(str(p.relative_to(images)) for p in images.rglob("*")
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        base = images
    elif images.is_file():
        base = root or images.parent
        items = [line.strip() for line in images.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
                 if line.strip() and not line.lstrip().startswith("#")]
    else:
        raise DataError(f"{images}: no such image directory or list file")
    if not items:
        raise DataError(f"{images}: no images found (suffixes {', '.join(IMAGE_SUFFIXES)})")
    return base, items


def pick_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def warn(message: str) -> None:
    print(f"hashkit: warning: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from hashkit import __version__
    from hashkit.codes.code_file import printable_path, save_code_file
    from hashkit.codes.encode_job import encode_collection, finish
    from hashkit.codes.encoder import batch_warning, encode_images
    from hashkit.data.readers import FileImageReader
    from hashkit.data.transforms import build_transform
    from hashkit.errors import HashkitError
    from hashkit.output_paths import check_output_file
    from hashkit.progress import progress_bar
    from hashkit.runs import load_run

    if args.chunk_size <= 0 or args.batch_size <= 0:
        raise HashkitError("--chunk-size and --batch-size must be > 0")
    check_output_file(args.out, overwrite=args.overwrite)
    run_dir, code_length = resolve_model_path(args.model)
    if args.code_length is not None:
        code_length = args.code_length
    root, items = list_images(args.images, args.root)
    loaded = load_run(run_dir, code_length)
    model, section = loaded.model, loaded.recipe.data.eval_transform
    depends = batch_warning(model)
    if depends:
        warn(depends)
    transform, reader, device = build_transform(section), FileImageReader(root), pick_device(args.device)
    job = {"hashkit": __version__, "weights_sha256": loaded.weights_sha256, "code_length": model.code_length,
           "transform": repr(section), "root": str(root.resolve()), "descriptors": args.descriptors,
           "batch_size": args.batch_size if depends else None}
    with progress_bar(total=len(items), desc="encode", unit="image", enabled=not args.no_progress) as bar:
        def encode_range(start: int, stop: int):
            return encode_images(model, transform, reader, items[start:stop], batch_size=args.batch_size,
                                 num_workers=args.num_workers, device=device, descriptors=args.descriptors,
                                 skip_bad_images=args.skip_bad_images, on_progress=bar.update)

        def resumed(n: int) -> None:
            bar.update(n)
            print(f"hashkit: resuming: {n} of {len(items)} images were encoded by an earlier run", file=sys.stderr)

        done = encode_collection(args.out, items, job, encode_range, num_bits=model.code_length,
                                 chunk_size=args.chunk_size, overwrite=args.overwrite,
                                 skip_bad_images=args.skip_bad_images, on_resume=resumed)
    recipe_file = Path(run_dir) / "recipe.toml"
    recipe_hash = hashlib.sha256(recipe_file.read_bytes()).hexdigest() if recipe_file.is_file() else ""
    out = save_code_file(args.out, done.packed, model.code_length, ids=done.ids, paths=done.paths,
                         descriptors=done.descriptors, recipe_hash=recipe_hash, protocol="encoded_db",
                         skipped=done.skipped,
                         extra={"run_dir": str(Path(run_dir).resolve()), "code_length": model.code_length,
                                "recipe_name": loaded.recipe.name, "image_root": str(root.resolve()),
                                "batch_dependent": "true" if depends else "false"})
    finish(args.out)
    if done.skipped:
        print(f"hashkit: skipped {len(done.skipped)} unreadable image(s) (listed in the file's 'skipped' metadata):",
              file=sys.stderr)
        for path, reason in done.skipped:
            print(f"  {printable_path(path)}: {reason}", file=sys.stderr)
    print(f"wrote {len(done.paths)} codes of {model.code_length} bits to {out}")
    return 0
