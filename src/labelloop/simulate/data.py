"""The labelled data a simulation runs on: a pool the oracle answers from and a test set.

A labelled file (CSV, JSON Lines or Parquet) is read whole with pandas; its text columns are
joined with a newline into the text the model sees, and its label column is the oracle. The
pool and the test set come from one stratified split of that file (the same split for every
strategy and seed, so that their curves are paired), or the test set is a second file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from labelloop.errors import InputFileError, InvalidInputError
from labelloop.learn.multilabel import indicator

__all__ = ["Dataset", "load_dataset", "read_labelled_file"]

_READERS = {".csv": "CSV", ".jsonl": "JSON Lines", ".parquet": "Parquet"}


@dataclass(frozen=True)
class Dataset:
    """Texts and oracle tags of the pool and of the test set; ``tags`` are all tags, sorted."""

    pool_texts: list[str]
    pool_tags: np.ndarray
    test_texts: list[str]
    test_tags: np.ndarray
    tags: tuple[str, ...]
    description: dict[str, object] = field(default_factory=dict)
    multi_label: bool = False  # pool_tags and test_tags are then 0/1 matrices over ``tags``


def read_labelled_file(path: str | Path, *, text_columns: Sequence[str], label_column: str) -> tuple[list[str], np.ndarray]:
    """``(texts, tags)`` of a labelled file: text columns joined by newlines, tags as str.

    Raises :class:`InputFileError` naming the file (and the field, or the first bad row) for a
    missing file, an unknown type, a missing column, or a row without a label.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _READERS:
        kinds = ", ".join(f"{ext} ({kind})" for ext, kind in _READERS.items())
        raise InputFileError(str(path), f"unknown file type {suffix or '(no extension)'!r}; use one of {kinds}")
    if not path.is_file():
        raise InputFileError(str(path), "no such file")
    if not text_columns:
        raise InvalidInputError("give at least one text column, e.g. --text-columns title,body")
    wanted = list(dict.fromkeys([*text_columns, label_column]))
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
        elif suffix == ".jsonl":
            frame = pd.read_json(path, lines=True, dtype=False)
        else:
            frame = pd.read_parquet(path)
    except (ValueError, UnicodeDecodeError, OSError, pd.errors.ParserError) as error:
        raise InputFileError(str(path), f"cannot be read as {_READERS[suffix]}: {error}") from None
    for column in wanted:
        if column not in frame.columns:
            known = ", ".join(map(str, frame.columns))
            raise InputFileError(str(path), f"no such column (the file has: {known})", field=column)
    frame = frame[wanted].fillna("").astype(str)
    tags = frame[label_column].str.strip().to_numpy(dtype=object)
    empty = np.flatnonzero(tags == "")
    if empty.size:
        raise InputFileError(
            str(path),
            f"{empty.size} row(s) have no label, the first is data row {int(empty[0]) + 1}; "
            "the oracle needs a label on every row",
            field=label_column,
        )
    if len(frame) == 0:
        raise InputFileError(str(path), "has no rows")
    texts = frame[list(text_columns)].agg("\n".join, axis=1).tolist()
    return texts, tags.astype(str)


def load_dataset(
    path: str | Path,
    *,
    text_columns: Sequence[str],
    label_column: str,
    test_fraction: float = 0.3,
    test_file: str | Path | None = None,
    split_seed: int = 0,
    label_separator: str | None = None,
    none_value: str = "__none__",
) -> Dataset:
    """Read ``path`` and split it stratified into pool and test set, or use ``test_file``;
    with ``label_separator``, a multi-label file (see the module documentation)."""
    texts, tags = read_labelled_file(path, text_columns=text_columns, label_column=label_column)
    if label_separator is not None:
        return _multi_label(path, texts, tags, text_columns=text_columns, label_column=label_column,
                            test_fraction=test_fraction, test_file=test_file, split_seed=split_seed,
                            separator=label_separator, none_value=none_value)
    description: dict[str, object] = {
        "file": str(path),
        "text_columns": list(text_columns),
        "label_column": label_column,
    }
    if test_file is not None:
        test_texts, test_tags = read_labelled_file(test_file, text_columns=text_columns, label_column=label_column)
        pool_texts, pool_tags = texts, tags
        description.update(test_file=str(test_file), test_fraction=None, split_seed=None)
    else:
        if not 0.0 < test_fraction < 1.0:
            raise InvalidInputError(f"--test-fraction must be between 0 and 1 (exclusive), not {test_fraction}")
        values, counts = np.unique(tags, return_counts=True)
        rare = [str(v) for v, c in zip(values, counts) if c < 2]
        if rare:
            raise InputFileError(
                str(path),
                f"tag(s) {', '.join(map(repr, rare))} have a single row; a stratified split needs "
                "at least 2 per tag (or give --test-file)",
                field=label_column,
            )
        n_test = int(round(len(tags) * test_fraction))
        if n_test < len(values) or len(tags) - n_test < len(values):
            raise InvalidInputError(
                f"{path}: {len(tags)} rows cannot be split with --test-fraction {test_fraction} so that "
                f"pool and test set each hold all {len(values)} tags"
            )
        index = np.arange(len(tags))
        pool_idx, test_idx = train_test_split(index, test_size=n_test, stratify=tags, random_state=split_seed)
        pool_idx, test_idx = np.sort(pool_idx), np.sort(test_idx)
        pool_texts, pool_tags = [texts[i] for i in pool_idx], tags[pool_idx]
        test_texts, test_tags = [texts[i] for i in test_idx], tags[test_idx]
        description.update(test_file=None, test_fraction=test_fraction, split_seed=split_seed)
    if len(np.unique(pool_tags)) < 2:
        raise InvalidInputError(f"{path}: the pool has fewer than 2 different tags; nothing to learn")
    all_tags = tuple(sorted(set(pool_tags.tolist()) | set(test_tags.tolist())))
    description.update(pool_size=len(pool_texts), test_size=len(test_texts), tags=list(all_tags))
    return Dataset(pool_texts, pool_tags, test_texts, test_tags, all_tags, description)


def _sets(cells: np.ndarray, separator: str, none_value: str) -> list[list[str]]:
    if not separator:
        raise InvalidInputError("--label-separator must not be empty")
    return [[] if cell == none_value else [t.strip() for t in cell.split(separator) if t.strip()] for cell in cells]


def _multi_label(path: str | Path, texts: list[str], cells: np.ndarray, *, text_columns: Sequence[str],
                 label_column: str, test_fraction: float, test_file: str | Path | None, split_seed: int,
                 separator: str, none_value: str) -> Dataset:
    sets = _sets(cells, separator, none_value)
    description: dict[str, object] = {"file": str(path), "text_columns": list(text_columns), "label_column": label_column,
                                      "label_separator": separator, "none_value": none_value}
    if test_file is not None:
        test_texts, test_cells = read_labelled_file(test_file, text_columns=text_columns, label_column=label_column)
        pool_texts, pool_sets, test_sets = texts, sets, _sets(test_cells, separator, none_value)
        description.update(test_file=str(test_file), test_fraction=None, split_seed=None)
    else:
        if not 0.0 < test_fraction < 1.0:
            raise InvalidInputError(f"--test-fraction must be between 0 and 1 (exclusive), not {test_fraction}")
        n_test = int(round(len(sets) * test_fraction))
        if n_test < 1 or len(sets) - n_test < 2:
            raise InvalidInputError(f"{path}: {len(sets)} rows cannot be split with --test-fraction {test_fraction}")
        pool_idx, test_idx = train_test_split(np.arange(len(sets)), test_size=n_test, random_state=split_seed)
        pool_idx, test_idx = np.sort(pool_idx), np.sort(test_idx)
        pool_texts, pool_sets = [texts[i] for i in pool_idx], [sets[i] for i in pool_idx]
        test_texts, test_sets = [texts[i] for i in test_idx], [sets[i] for i in test_idx]
        description.update(test_file=None, test_fraction=test_fraction, split_seed=split_seed)
    all_tags = tuple(sorted({t for chosen in [*pool_sets, *test_sets] for t in chosen}))
    if len(all_tags) < 1:
        raise InvalidInputError(f"{path}: no row has a tag; nothing to learn")
    pool_Y, test_Y = indicator(pool_sets, all_tags), indicator(test_sets, all_tags)
    description.update(pool_size=len(pool_texts), test_size=len(test_texts), tags=list(all_tags), multi_label=True)
    return Dataset(pool_texts, pool_Y, test_texts, test_Y, all_tags, description, multi_label=True)
