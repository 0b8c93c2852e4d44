"""``hashkit encode CHECKPOINT_OR_RUN --images DIR|LIST --out codes.safetensors``: hash a collection of images.

The model comes from a run directory (or a ``L{bits}/checkpoint.safetensors`` inside one) through
:func:`hashkit.runs.load_run`, in eval mode, with the recipe's eval transform; images are encoded in batches
(GPU when present) and written as a code file (:mod:`hashkit.codes.code_file`) with their relative paths.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

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
    p.add_argument("--code-length", type=int, default=None, help="code length of the run (default: its first)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (cuda when present), cpu, cuda, cuda:1, ...")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
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
        items = [line.strip() for line in images.read_text(encoding="utf-8").splitlines()
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


def encode_images(model, transform, root: Path, items: list[str], *, batch_size: int, num_workers: int, device,
                  progress: bool):
    """±1 codes ``(n, L)`` of ``items`` (relative to ``root``) in file order."""
    import torch
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from hashkit.data.image_dataset import ImageDataset
    from hashkit.data.readers import FileImageReader
    from hashkit.interfaces import Split

    split = Split(items=items, targets=torch.zeros(len(items), 0), reader=FileImageReader(root))
    loader = DataLoader(ImageDataset(split, transform), batch_size=batch_size, num_workers=num_workers,
                        shuffle=False)
    model = model.to(device).eval()
    codes = []
    with torch.no_grad():
        for images, _, _ in tqdm(loader, desc="encode", unit="batch", disable=not progress):
            codes.append(model.encode(images.to(device)).cpu())
    return torch.cat(codes)


def run(args: argparse.Namespace) -> int:
    from hashkit.codes.code_file import save_code_file
    from hashkit.codes.packing import pack_codes
    from hashkit.data.transforms import build_transform
    from hashkit.runs import load_run

    run_dir, code_length = resolve_model_path(args.model)
    if args.code_length is not None:
        code_length = args.code_length
    loaded = load_run(run_dir, code_length)
    root, items = list_images(args.images, args.root)
    codes = encode_images(loaded.model, build_transform(loaded.recipe.data.eval_transform), root, items,
                          batch_size=args.batch_size, num_workers=args.num_workers, device=pick_device(args.device),
                          progress=not args.no_progress)
    recipe_file = Path(run_dir) / "recipe.toml"
    recipe_hash = hashlib.sha256(recipe_file.read_bytes()).hexdigest() if recipe_file.is_file() else ""
    out = save_code_file(args.out, pack_codes(codes), codes.shape[1], paths=items, recipe_hash=recipe_hash,
                         protocol="encoded_db",
                         extra={"run_dir": str(Path(run_dir).resolve()), "code_length": codes.shape[1],
                                "recipe_name": loaded.recipe.name, "image_root": str(root.resolve())})
    print(f"wrote {len(items)} codes of {codes.shape[1]} bits to {out}")
    return 0
