"""What the service does, independent of the web framework: load the collection and models, answer searches.

:func:`load_service` takes what ``hashkit serve`` was given:

- code files (``hashkit encode`` output, one per code length): each is searched as it is; the model that
  encodes uploaded images is the run recorded in the file (``extra.run_dir``) or ``--model RUN``; the image
  folder is ``--images`` or the folder recorded in the first file (``extra.image_root``);
- a run directory: the ``--images`` folder is encoded with every code length of the run at start-up (as
  ``hashkit encode`` would), and those codes are served.

:class:`SearchService` answers searches by code, by database id and by uploaded image; every answer has the
shape ``{"bits", "k", "radius", "queries": [{"query", "results": [{"id", "path", "distance", "label",
"image"}], "attention": [...]}]}`` with the results of :meth:`CodeIndex.search` (the same as ``hashkit
search``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Sequence

import attrs
import numpy as np

from hashkit.errors import ContractError
from hashkit.serve.collection import CodeIndex, Collection, Hit, NotFound, packed_stack, parse_code
from hashkit.serve.query_encoder import QueryEncoder


@attrs.frozen
class Settings:
    """Limits of the service (all requests)."""

    #: largest request body (uploads included), bytes
    max_request_bytes: int = 8 * 2**20
    #: decoded pixels per request (all its images together)
    max_pixels: int = 40_000_000
    #: images or codes per request
    max_queries: int = 16
    #: largest k, and the largest number of results a radius search returns per query
    max_k: int = 1000
    default_k: int = 10
    #: images per forward pass (models whose codes depend on the batch always use 1)
    max_batch: int = 16


class SearchService:
    """A :class:`Collection` plus a :class:`QueryEncoder` per code length that has a model."""

    def __init__(self, collection: Collection, encoders: dict[int, QueryEncoder], settings: Settings = Settings()):
        self.collection = collection
        self.encoders = encoders
        self.settings = settings

    # -------------------------------------------------------------------------------------- information
    def info(self) -> dict:
        lengths = []
        for bits in self.collection.code_lengths:
            index = self.collection.index(bits)
            enc = self.encoders.get(bits)
            lengths.append({
                "bits": bits, "num_codes": len(index), "source": index.source,
                "image_search": enc is not None,
                "recipe": enc.recipe_name if enc else index.metadata.get("extra.recipe_name", ""),
                "attention_maps": enc.map_names if enc else [],
                "batch_dependent": bool(enc and enc.batch_dependent),
            })
        s = self.settings
        return {"code_lengths": lengths, "images": self.collection.image_root is not None,
                "limits": {"max_request_bytes": s.max_request_bytes, "max_pixels": s.max_pixels,
                           "max_queries": s.max_queries, "max_k": s.max_k}, "default_k": s.default_k}

    # ------------------------------------------------------------------------------------------ search
    def _check(self, k: int | None, radius: int | None, bits: int | None) -> tuple[CodeIndex, int]:
        index = self.collection.index(bits)
        k = self.settings.default_k if k is None else int(k)
        if not 1 <= k <= self.settings.max_k:
            raise ContractError(f"k must be in 1..{self.settings.max_k}, found {k}")
        if radius is not None and not 0 <= radius <= index.num_bits:
            raise ContractError(f"radius must be in 0..{index.num_bits}, found {radius}")
        return index, k

    def _answer(self, index: CodeIndex, names: Sequence[str], packed: np.ndarray, k: int, radius: int | None,
                attention: Sequence[list] | None = None) -> dict:
        cap = self.settings.max_k
        rows = index.search(packed, k, radius, limit=cap + 1)  # one more than shown: tells if a ball was cut
        queries = []
        for i, (name, hits) in enumerate(zip(names, rows)):
            entry = {"query": name, "results": [self._result(index, h) for h in hits[:cap]],
                     "truncated": len(hits) > cap}
            if attention is not None:
                entry["attention"] = attention[i]
            queries.append(entry)
        return {"bits": index.num_bits, "k": k, "radius": radius, "queries": queries}

    @staticmethod
    def _result(index: CodeIndex, hit: Hit) -> dict:
        return {"id": hit.id, "path": hit.path, "distance": hit.distance, "label": hit.label,
                "image": f"/api/images/{hit.id}?bits={index.num_bits}"}

    def search_codes(self, codes: Sequence, *, bits: int | None = None, k: int | None = None,
                     radius: int | None = None) -> dict:
        index, k = self._check(k, radius, bits)
        if not 1 <= len(codes) <= self.settings.max_queries:
            raise ContractError(f"send 1..{self.settings.max_queries} codes per request, found {len(codes)}")
        packed = packed_stack([parse_code(c, index.num_bits) for c in codes])
        return self._answer(index, [f"code {i}" for i in range(len(codes))], packed, k, radius)

    def search_id(self, item_id: int, *, bits: int | None = None, k: int | None = None, radius: int | None = None,
                  attention: bool = False) -> dict:
        index, k = self._check(k, radius, bits)
        packed = index.code_of(item_id)
        maps = None
        if attention:
            maps = [self._overlays_of_item(index, item_id)]
        return self._answer(index, [index.path(item_id)], packed, k, radius, maps)

    def search_images(self, images: Sequence[tuple[str, object]], *, bits: int | None = None, k: int | None = None,
                      radius: int | None = None, attention: bool = False) -> dict:
        """``images``: ``(name, PIL image)`` pairs (already decoded, see :mod:`hashkit.serve.uploads`)."""
        index, k = self._check(k, radius, bits)
        encoder = self.encoders.get(index.num_bits)
        if encoder is None:
            raise NotFound(f"no model is loaded for the {index.num_bits}-bit codes: search by id or code, or start "
                           "the service with --model RUN")
        if not 1 <= len(images) <= self.settings.max_queries:
            raise ContractError(f"send 1..{self.settings.max_queries} images per request, found {len(images)}")
        packed = encoder.encode([img for _, img in images])
        maps = [encoder.overlays(img) for _, img in images] if attention else None
        return self._answer(index, [name for name, _ in images], packed, k, radius, maps)

    def _overlays_of_item(self, index: CodeIndex, item_id: int) -> list:
        from hashkit.serve.uploads import decode_image

        encoder = self.encoders.get(index.num_bits)
        if encoder is None or not encoder.map_names:
            return []
        try:
            path = self.collection.image_path(index.num_bits, item_id)
        except NotFound:
            return []
        return encoder.overlays(decode_image(path.read_bytes(), path.name, self.settings.max_pixels))


# ------------------------------------------------------------------------------------------------ loading
def _recipe_hash(run_dir: Path) -> str:
    recipe = Path(run_dir) / "recipe.toml"
    return hashlib.sha256(recipe.read_bytes()).hexdigest() if recipe.is_file() else ""


def _encoder_for(run_dir: Path | None, bits: int, settings: Settings, log: Callable[[str], None],
                 expected_hash: str = "") -> QueryEncoder | None:
    from hashkit.runs import load_run, run_code_lengths

    if run_dir is None:
        log(f"{bits} bits: no model recorded (pass --model RUN): search by image is off")
        return None
    if not Path(run_dir).is_dir() or bits not in run_code_lengths(Path(run_dir)):
        log(f"{bits} bits: {run_dir} has no {bits}-bit checkpoint: search by image is off")
        return None
    if expected_hash and _recipe_hash(Path(run_dir)) != expected_hash:
        log(f"{bits} bits: warning: {run_dir}/recipe.toml differs from the recipe the codes were encoded with")
    return QueryEncoder(load_run(Path(run_dir), bits), settings.max_batch)


def load_service(sources: Sequence[Path], images: Path | None = None, model: Path | None = None,
                 settings: Settings = Settings(), log: Callable[[str], None] = print) -> SearchService:
    """The service for ``hashkit serve SOURCES --images DIR [--model RUN]`` (see the module docstring)."""
    from hashkit.codes.code_file import CodeFile, load_code_file
    from hashkit.errors import CodeFileError

    indexes, encoders = [], {}
    root = images
    for source in sources:
        source = Path(source)
        if source.is_dir():
            indexes_of_run, encoders_of_run = _encode_run(source, images, settings, log)
            indexes += indexes_of_run
            encoders.update(encoders_of_run)
            continue
        code_file: CodeFile = load_code_file(source)
        index = CodeIndex(code_file, str(source))
        indexes.append(index)
        recorded = code_file.metadata.get("extra.run_dir")
        run_dir = model or (Path(recorded) if recorded else None)
        encoders[index.num_bits] = _encoder_for(run_dir, index.num_bits, settings, log,
                                                "" if model else code_file.metadata.get("recipe_hash", ""))
        if root is None and code_file.metadata.get("extra.image_root"):
            root = Path(code_file.metadata["extra.image_root"])
    if root is not None and not Path(root).is_dir():
        raise CodeFileError(f"{root}: the image folder does not exist (pass --images DIR)")
    if root is None:
        log("no image folder (--images): result pictures are off")
    return SearchService(Collection(indexes, root), {b: e for b, e in encoders.items() if e is not None}, settings)


def _encode_run(run_dir: Path, images: Path | None, settings: Settings, log) -> tuple[list, dict]:
    import time

    import torch

    from hashkit.cli.commands.encode import list_images
    from hashkit.codes.code_file import CodeFile
    from hashkit.codes.encoder import encode_images
    from hashkit.codes.packing import pack_codes
    from hashkit.data.readers import FileImageReader
    from hashkit.data.transforms import build_transform
    from hashkit.runs import load_run, run_code_lengths

    if images is None:
        raise ContractError(f"{run_dir}: serving a run directory needs --images DIR (the folder to encode)")
    root, items = list_images(Path(images), None)
    indexes, encoders = [], {}
    for bits in run_code_lengths(run_dir):
        started = time.perf_counter()
        loaded = load_run(run_dir, bits)
        codes = encode_images(loaded.model, build_transform(loaded.recipe.data.eval_transform), FileImageReader(root),
                              items, batch_size=64, num_workers=0, device=torch.device("cpu")).codes
        meta = {"extra.run_dir": str(Path(run_dir).resolve()), "extra.recipe_name": loaded.recipe.name}
        code_file = CodeFile(pack_codes(codes), bits, torch.arange(len(items)), tuple(items), None, meta)
        indexes.append(CodeIndex(code_file, f"{run_dir} ({bits} bits, {len(items)} images encoded at start)"))
        encoders[bits] = QueryEncoder(loaded, settings.max_batch)
        log(f"{bits} bits: encoded {len(items)} images of {root} in {time.perf_counter() - started:.1f} s")
    return indexes, encoders
