"""``hashkit attention RUN --images DIR --out DIR``: overlay a trained model's attention maps on images.

For every model whose attention components expose maps (``AttentionOutput.maps``; SEMICON's ``sem`` gives
``stage1..stage3``), each image is resized and centre-cropped with the recipe's eval transform, run through
the model in eval mode (in batches of ``--batch-size``; note that SEM with ``sigma = "batch"`` normalises over
the batch), and for each map the command writes ``OUT/<image>_<map>.png`` (the map upsampled bilinearly,
scaled to [0, 1] by its own maximum, coloured and blended over the image) and ``OUT/<image>_maps.png`` (the
image and all overlays side by side).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hashkit.atomic_io import atomic_write_png
from hashkit.cli.args import add_image_options


def add_parser(sub) -> None:
    p = sub.add_parser("attention", help="write PNG overlays of a model's attention maps on images",
                       description="Overlay each attention map of a trained model (e.g. SEMICON's three SEM "
                                   "stages) on input images, one PNG per image and map plus a panel per image.")
    p.add_argument("model", type=Path, metavar="RUN", help="run directory, or L<bits>/checkpoint.safetensors in one")
    p.add_argument("--images", type=Path, required=True, metavar="DIR|LIST",
                   help="a directory (searched recursively) or a text file with one image path per line")
    p.add_argument("--root", type=Path, default=None, help="directory the paths of a LIST are relative to")
    p.add_argument("--out", type=Path, required=True, help="directory for the PNG files")
    p.add_argument("--code-length", type=int, default=None, help="code length of the run (default: its first)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--opacity", type=float, default=0.5, help="weight of the coloured map in the blend (0..1)")
    p.add_argument("--colormap", default="jet", help="matplotlib colormap name")
    p.add_argument("--device", default="auto", help="auto (cuda when present), cpu, cuda, ...")
    add_image_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch
    from PIL import Image

    from hashkit.cli.commands.encode import list_images, pick_device, resolve_model_path
    from hashkit.data.readers import FileImageReader
    from hashkit.data.transforms import build_transform
    from hashkit.errors import ContractError, HashkitError
    from hashkit.gallery.overlay import display_transform, heatmaps, map_names, overlay
    from hashkit.runs import load_run

    if not 0 <= args.opacity <= 1:
        raise HashkitError(f"--opacity must be in [0, 1], found {args.opacity}")
    run_dir, code_length = resolve_model_path(args.model)
    loaded = load_run(run_dir, args.code_length if args.code_length is not None else code_length)
    model = loaded.model
    names = map_names(model)
    if not names:
        raise ContractError(f"{run_dir}: the model's attention components expose no maps "
                            f"(recipe {loaded.recipe.name!r} has {len(model.attention)} attention components)")
    section = loaded.recipe.data.eval_transform
    transform = build_transform(section)
    view = display_transform(section)
    root, items = list_images(args.images, args.root)
    device = pick_device(args.device)
    model = model.to(device).eval()
    args.out.mkdir(parents=True, exist_ok=True)
    written = 0
    reader = FileImageReader(root)
    for start in range(0, len(items), args.batch_size):
        chunk = items[start:start + args.batch_size]
        shown, tensors = [], []
        for item in chunk:
            rgb = reader(item)
            shown.append(view(rgb))
            tensors.append(transform(rgb))
        maps = heatmaps(model, torch.stack(tensors).to(device), section.crop)
        for item, image, per_image in zip(chunk, shown, maps):
            stem = Path(item).with_suffix("").as_posix().replace("/", "__")
            panels = [image]
            for name, heat in zip(names, per_image):
                picture = overlay(image, heat.numpy(), args.opacity, args.colormap)
                atomic_write_png(args.out / f"{stem}_{name}.png", picture)
                panels.append(picture)
                written += 1
            panel = Image.new("RGB", (section.crop * len(panels), section.crop))
            for i, p in enumerate(panels):
                panel.paste(p, (i * section.crop, 0))
            atomic_write_png(args.out / f"{stem}_maps.png", panel)
            written += 1
    print(f"wrote {written} PNG files for {len(items)} images and maps {', '.join(names)} to {args.out}")
    return 0
