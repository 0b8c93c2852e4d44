"""Exception types that hashkit raises for user-facing problems.

Every error here is *expected* (bad recipe, bad input, missing file) and the CLI prints it as one line on
stderr with exit status 2. Anything else is an internal error (exit status 1).
"""

from __future__ import annotations

__all__ = [
    "shorten",
    "HashkitError",
    "RecipeError",
    "UnknownComponentError",
    "DuplicateComponentError",
    "ContractError",
    "DataError",
    "CheckpointError",
    "CodeFileError",
    "TrainingError",
    "OutputError",
    "RecipeWarning",
    "RecipeUpgradeWarning",
]


def shorten(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters: user input echoed in an error message stays short."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit - 3]}... ({len(text):,} characters)"


class HashkitError(Exception):
    """Base class of every user-facing hashkit error (CLI exit status 2)."""


class RecipeError(HashkitError, ValueError):
    """A recipe is malformed: names the file, the dotted key, what was expected and what was found."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None):
        self.file = file
        self.key = key
        if key and len(key) > 120:
            key = f"{key[:100]}... ({len(key):,} characters)"
        where = ""
        if file:
            where += f"{file}: "
        if key:
            where += f"{key}: "
        super().__init__(where + message)


class UnknownComponentError(HashkitError, KeyError):
    """A component name that no loaded plugin registered; lists the closest registered names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DuplicateComponentError(HashkitError):
    """Two plugins registered the same (kind, name); names both plugins."""


class ContractError(HashkitError, ValueError):
    """Two components do not fit together (channels, shapes, required inputs); names both.

    ``key``: the recipe key of the component concerned, when the builder knows it."""

    key: str | None = None


class DataError(HashkitError, OSError):
    """A dataset file is missing, partial, corrupt or inconsistent with its documented layout; names the path."""


class CheckpointError(HashkitError):
    """A checkpoint or run directory is missing, corrupt or incompatible."""


class CodeFileError(HashkitError):
    """A code file (packed hash codes) is truncated, inconsistent or of an unknown format."""


class RecipeWarning(UserWarning):
    """A recipe value that is accepted but does not act as written (e.g. clamped to the data); shown by
    ``hashkit recipe validate`` and at the start of a run."""


class TrainingError(HashkitError):
    """Training cannot go on (a NaN or inf loss): names the step and the loss parts; checkpoints stay intact."""


class OutputError(HashkitError, OSError):
    """An output location cannot be written (read-only, full, not a directory, an existing file); names it."""


class RecipeUpgradeWarning(UserWarning):
    """A recipe saved in a run directory by an older hashkit was brought up to the current schema on load
    (:mod:`hashkit.recipe.upgrade`); the CLI prints it as one line on stderr."""
