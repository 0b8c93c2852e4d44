"""Training: the loop, checkpoints, resume, AMP, DDP and run directories.

``train(recipe_or_path, out_dir, *, overrides=None, resume=False, code_lengths=None) -> report dict``; see
``docs/training.md``.
"""

from hashkit.training.api import train

__all__ = ["train"]
