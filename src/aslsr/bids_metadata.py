"""BIDS metadata files by the inheritance principle (BIDS specification, "The Inheritance Principle").

A metadata file (``.json``, ``.tsv``) applies to a data file when it lies in the data file's
folder or in a folder above it, up to the dataset's root (the folder with
``dataset_description.json``), has the suffix asked for (for a sidecar: the data file's own
suffix, e.g. ``asl``), and names no entity that the data file does not have with the same label.
So a dataset-level ``asl.json`` applies to every ASL run, ``sub-01/sub-01_asl.json`` to every ASL
run of sub-01, and ``task-rest_asl.json`` only to task-rest runs. JSON files are merged from the
root down (a closer file's keys override); of other files only the closest applies.

Entity names come from the BIDS schema (``bidsschematools``), the same source as the validator's.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from .errors import InputError

_PAIR = re.compile(r"([A-Za-z0-9]+)-([A-Za-z0-9]+)")
_WORD = re.compile(r"[A-Za-z0-9]+")


@functools.lru_cache(maxsize=1)
def entity_order() -> tuple[str, ...]:
    """BIDS entity keys (``sub``, ``ses``, ..., ``desc``) in the order file names use them, from the schema."""
    from bidsschematools import schema

    loaded = schema.load_schema()
    return tuple(loaded.objects.entities[name]["name"] for name in loaded.rules.entities)


def dataset_root(path: str | os.PathLike) -> Path | None:
    """The closest folder at or above ``path``'s folder that holds ``dataset_description.json``; else None."""
    folder = Path(os.path.abspath(path)).parent
    for candidate in (folder, *folder.parents):
        if (candidate / "dataset_description.json").is_file():
            return candidate
    return None


def split_name(name: str) -> tuple[dict[str, str], str, str] | None:
    """``(entities, suffix, extension)`` of a BIDS-shaped file name (``[key-label_...]suffix.ext``), else None.

    Unlike data files, metadata files may have no entities at all (a dataset-level ``asl.json``).
    """
    stem, dot, rest = name.partition(".")
    if not dot or not stem:
        return None
    *pairs, suffix = stem.split("_")
    if not _WORD.fullmatch(suffix):
        return None
    entities: dict[str, str] = {}
    for pair in pairs:
        match = _PAIR.fullmatch(pair)
        if match is None or match.group(1) in entities:
            return None
        entities[match.group(1)] = match.group(2)
    return entities, suffix, f".{rest}"


def inherited_files(data_path: str | os.PathLike, *, extension: str = ".json", suffix: str | None = None) -> list[Path]:
    """Metadata files with ``extension`` that apply to ``data_path``, farthest (dataset level) first.

    ``suffix`` defaults to the data file's own (its sidecar); give e.g. ``"aslcontext"`` for a
    companion file. Returns ``[]`` for a file outside a BIDS dataset or with a name that is not
    BIDS-shaped. Raises :class:`InputError` when two equally specific files apply at one level.
    """
    data_path = Path(os.path.abspath(data_path))
    parsed = split_name(data_path.name)
    root = dataset_root(data_path)
    if parsed is None or root is None:
        return []
    entities, own_suffix, _ = parsed
    wanted = own_suffix if suffix is None else suffix
    folders = [data_path.parent]
    while folders[-1] != root:
        folders.append(folders[-1].parent)
    found: list[Path] = []
    for folder in reversed(folders):  # the dataset's root first
        if not folder.is_dir():
            continue
        here = []
        for candidate in sorted(folder.iterdir()):
            meta = split_name(candidate.name)
            if (
                meta is None
                or meta[1] != wanted
                or meta[2] != extension
                or any(entities.get(key) != label for key, label in meta[0].items())
                or not candidate.is_file()
            ):
                continue
            here.append((len(meta[0]), candidate))
        here.sort(key=lambda item: item[0])
        for (count, first), (other_count, second) in zip(here, here[1:]):
            if count == other_count:
                raise InputError(
                    f"both {first.name} and {second.name} apply to {data_path.name} at the same "
                    "folder level (BIDS inheritance allows one)",
                    folder,
                )
        found.extend(path for _, path in here)
    return found
