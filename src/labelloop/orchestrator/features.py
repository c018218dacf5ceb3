"""Feature matrices: computed once per item and cached on disk as shards, never per round.

Layout under ``models_dir/<project>/features/<featurizer>/``::

    manifest.json            featurizer, pool fingerprint, generation, shard list (written last,
                             atomically: a crash leaves the previous manifest valid)
    featurizer-<g>.pkl       the featurizer, fitted once on a sample of the pool's texts
    ids-<g>.npy              item id of each row (ascending)
    hashes-<g>.npy           64-bit hash of each row's text (to spot re-imported texts)
    shard-<g>-<k>.*.npy      rows [start, stop): CSR as data/indices/indptr .npy, or one dense
                             .npy; memory-mapped when read, so a round never holds the matrix

When the pool changes (fingerprint: item count, largest id, latest ``updated_at``) the cache
is brought up to date incrementally: new items are transformed with the fitted featurizer and
appended; items whose text changed are re-transformed in place; labels, which also move
``updated_at``, change nothing but the fingerprint. The featurizer is refitted (and every row
recomputed) only when items were deleted or the pool grew by more than ``REFIT_GROWTH``
since the fit.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp
from sqlalchemy import Engine

from labelloop.learn import make_featurizer
from labelloop.store import reading
from labelloop.store.pool import PoolFingerprint, changed_since, iter_texts, pool_fingerprint

SHARD_ROWS = 100_000
FIT_SAMPLE = 100_000
REFIT_GROWTH = 0.5


class FeatureSource(Protocol):
    """Row-addressable features: what a round needs, without holding the whole matrix."""

    n_rows: int

    def rows(self, index: np.ndarray) -> Any: ...

    def chunks(self) -> Iterator[tuple[int, Any]]: ...


class InMemoryFeatures:
    """A feature matrix already in memory (simulations, small pools)."""

    def __init__(self, matrix: Any, chunk_rows: int = SHARD_ROWS):
        self.matrix = matrix.tocsr() if sp.issparse(matrix) else np.asarray(matrix)
        self.n_rows = self.matrix.shape[0]
        self.chunk_rows = chunk_rows

    def rows(self, index: np.ndarray) -> Any:
        return self.matrix[np.asarray(index, dtype=np.intp)]

    def chunks(self) -> Iterator[tuple[int, Any]]:
        for start in range(0, self.n_rows, self.chunk_rows):
            yield start, self.matrix[start : start + self.chunk_rows]


def text_hashes(texts: list[str]) -> np.ndarray:
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
         for t in texts),
        dtype=np.uint64,
        count=len(texts),
    )


_LOADED: dict[str, Any] = {}  # featurizers already unpickled in this process, by file path


def plain_vocabulary(featurizer: Any) -> Any:
    """Make a fitted tf-idf vocabulary map to Python ints (scikit-learn leaves numpy.int64
    values, which pickle 7x slower: about 1 s per 150,000 terms, in every model file)."""
    vectorizer = getattr(featurizer, "vectorizer_", None)
    vocabulary = getattr(vectorizer, "vocabulary_", None)
    if isinstance(vocabulary, dict) and vocabulary and not isinstance(next(iter(vocabulary.values())), int):
        vectorizer.vocabulary_ = {term: int(column) for term, column in vocabulary.items()}
    return featurizer


def save_featurizer(featurizer: Any, path: Path) -> None:
    """Pickle (the C pickler: joblib's pure-Python one takes seconds on a 200,000-term vocabulary)."""
    plain_vocabulary(featurizer)
    with open(path, "wb") as fh:
        pickle.dump(featurizer, fh, protocol=pickle.HIGHEST_PROTOCOL)
    _LOADED[str(path)] = featurizer


def load_featurizer(path: Path) -> Any:
    """The featurizer saved at ``path``; files are never rewritten, so a loaded one is reused."""
    key = str(path)
    if key not in _LOADED:
        if len(_LOADED) > 8:
            _LOADED.clear()
        with open(path, "rb") as fh:
            _LOADED[key] = pickle.load(fh)  # our own file, written by save_featurizer
    return _LOADED[key]


def _save_shard(directory: Path, name: str, matrix: Any) -> None:
    if sp.issparse(matrix):
        m = matrix.tocsr()
        m.sort_indices()
        for part in ("data", "indices", "indptr"):
            np.save(directory / f"{name}.{part}.npy", getattr(m, part))
    else:
        np.save(directory / f"{name}.dense.npy", np.ascontiguousarray(matrix, dtype=np.float32))


def _shard_files(directory: Path, name: str) -> list[Path]:
    return sorted(directory.glob(f"{name}.*.npy"))


class ShardedFeatures:
    """The rows of a cached feature matrix, read shard by shard through memory maps."""

    def __init__(self, directory: Path, manifest: dict[str, Any]):
        self.directory = directory
        self.manifest = manifest
        self.shards: list[dict[str, Any]] = manifest["shards"]
        self.n_rows = int(manifest["n_rows"])
        self.n_features = int(manifest["n_features"])
        self.sparse = manifest["kind"] == "sparse"

    def shard(self, i: int) -> Any:
        name, n = self.shards[i]["name"], self.shards[i]["stop"] - self.shards[i]["start"]
        if not self.sparse:
            return np.load(self.directory / f"{name}.dense.npy", mmap_mode="r")
        data, indices, indptr = (
            np.load(self.directory / f"{name}.{part}.npy", mmap_mode="r") for part in ("data", "indices", "indptr")
        )
        return sp.csr_matrix((data, indices, indptr), shape=(n, self.n_features), copy=False)

    def rows(self, index: np.ndarray) -> Any:
        """Rows ``index`` (any order), loaded in memory."""
        index = np.asarray(index, dtype=np.int64)
        starts = np.array([s["start"] for s in self.shards], dtype=np.int64)
        which = np.searchsorted(starts, index, side="right") - 1
        parts, order = [], []
        for i in np.unique(which):
            mask = which == i
            local = index[mask] - starts[i]
            m = self.shard(int(i))
            parts.append(m[local] if self.sparse else np.array(m[local]))
            order.append(np.flatnonzero(mask))
            del m
        if not parts:
            return sp.csr_matrix((0, self.n_features), dtype=np.float32) if self.sparse else np.zeros((0, self.n_features), np.float32)
        stacked = sp.vstack(parts, format="csr") if self.sparse else np.vstack(parts)
        back = np.empty(len(index), dtype=np.intp)
        back[np.concatenate(order)] = np.arange(len(index))
        return stacked[back]

    def chunks(self) -> Iterator[tuple[int, Any]]:
        for i, s in enumerate(self.shards):
            yield s["start"], self.shard(i)


class FeatureCache:
    """The on-disk feature cache of one project and featurizer."""

    def __init__(self, directory: Path, featurizer: str, *, shard_rows: int = SHARD_ROWS,
                 fit_sample: int = FIT_SAMPLE, seed: int = 0):
        self.directory = Path(directory)
        self.featurizer_name = featurizer
        self.shard_rows = shard_rows
        self.fit_sample = fit_sample
        self.seed = seed

    # ---------------------------------------------------------------- reading
    def manifest(self) -> dict[str, Any] | None:
        path = self.directory / "manifest.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        return data if data.get("featurizer") == self.featurizer_name else None

    def load(self, manifest: dict[str, Any]) -> tuple[ShardedFeatures, np.ndarray, Any]:
        """(features, item ids of the rows, fitted featurizer)."""
        ids = np.load(self.directory / manifest["ids"])
        return ShardedFeatures(self.directory, manifest), ids, load_featurizer(self.directory / manifest["featurizer_file"])

    # ---------------------------------------------------------------- updating
    def ensure(self, engine: Engine, *, project_id: int) -> tuple[ShardedFeatures, np.ndarray, Any, str]:
        """Bring the cache up to date with the pool; returns (features, ids, featurizer, what
        was done: "cached", "updated" or "built")."""
        with reading(engine) as conn:
            fp = pool_fingerprint(conn, project_id=project_id)
        manifest = self.manifest()
        if manifest is not None and PoolFingerprint.from_json(manifest["fingerprint"]) == fp:
            return (*self.load(manifest), "cached")
        self.directory.mkdir(parents=True, exist_ok=True)
        if manifest is not None:
            updated = self._update(engine, project_id, manifest, fp)
            if updated is not None:
                return (*self.load(updated), "updated")
        return (*self.load(self._build(engine, project_id, fp)), "built")

    def _build(self, engine: Engine, project_id: int, fp: PoolFingerprint) -> dict[str, Any]:
        """Fit the featurizer on a sample of at most ``fit_sample`` texts, then transform every
        item shard by shard (two streaming passes when the pool is larger than the sample).
        Only items up to ``fp.max_id`` are read, so concurrent imports wait for the next update."""
        generation = self._next_generation()
        rng = np.random.default_rng(self.seed)
        n = fp.count
        take = np.zeros(max(n, 1), dtype=bool)
        take[rng.choice(n, size=min(n, self.fit_sample), replace=False)] = True
        ids_parts, hash_parts, sample, position = [], [], [], 0
        with reading(engine) as conn:
            for ids, texts in iter_texts(conn, project_id=project_id, max_id=fp.max_id):
                ids_parts.append(ids)
                hash_parts.append(text_hashes(texts))
                mask = take[position : position + len(ids)]
                sample.extend(t for t, keep in zip(texts, mask) if keep)
                position += len(ids)
        ids = np.concatenate(ids_parts) if ids_parts else np.zeros(0, np.int64)
        hashes = np.concatenate(hash_parts) if hash_parts else np.zeros(0, np.uint64)
        featurizer = make_featurizer(self.featurizer_name)
        if len(sample) == len(ids):  # the sample is the whole pool: one tokenizing pass
            matrix = featurizer.fit_transform(sample)
            shards = []
            for k, start in enumerate(range(0, len(ids), self.shard_rows)):
                name = f"shard-{generation}-{k:05d}"
                _save_shard(self.directory, name, matrix[start : start + self.shard_rows])
                shards.append({"name": name, "start": start, "stop": min(len(ids), start + self.shard_rows)})
            del matrix
        else:
            featurizer.fit(sample)
            shards = self._transform_stream(engine, project_id, featurizer, generation, len(ids), fp.max_id)
        del sample
        save_featurizer(featurizer, self.directory / f"featurizer-{generation}.pkl")
        stored = PoolFingerprint(len(ids), fp.max_id, fp.max_updated_at)
        return self._commit(self._manifest(generation, stored, ids, hashes, shards, featurizer, fitted_rows=len(ids)))

    def _transform_stream(self, engine: Engine, project_id: int, featurizer: Any, generation: int,
                          expected: int, max_id: int) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = []
        buffer: list[str] = []
        row = 0

        def flush() -> None:
            nonlocal row, buffer
            if buffer:
                name = f"shard-{generation}-{len(shards):05d}"
                _save_shard(self.directory, name, featurizer.transform(buffer))
                shards.append({"name": name, "start": row, "stop": row + len(buffer)})
                row += len(buffer)
                buffer = []

        with reading(engine) as conn:
            for _ids, texts in iter_texts(conn, project_id=project_id, max_id=max_id):
                for t in texts:
                    buffer.append(t)
                    if len(buffer) >= self.shard_rows:
                        flush()
        flush()
        if row != expected:  # items deleted between the passes: let the next round rebuild
            raise RuntimeError(f"the pool changed while building features ({row} rows, expected {expected})")
        return shards

    def _update(self, engine: Engine, project_id: int, manifest: dict[str, Any],
                fp: PoolFingerprint) -> dict[str, Any] | None:
        """Incremental update, or None when a full rebuild is needed."""
        old_fp = PoolFingerprint.from_json(manifest["fingerprint"])
        if fp.count < old_fp.count or fp.max_id < old_fp.max_id:
            return None  # items were deleted
        if fp.count > (1 + REFIT_GROWTH) * max(manifest["fitted_rows"], 1):
            return None  # the vocabulary would be stale: refit
        features, ids, featurizer = self.load(manifest)
        hashes = np.load(self.directory / manifest["hashes"])
        repl_rows: list[int] = []
        repl_texts: list[str] = []
        new_ids: list[np.ndarray] = []
        new_texts: list[str] = []
        with reading(engine) as conn:
            # Changed texts among the cached rows (labels move updated_at but keep the text).
            changed = changed_since(conn, project_id=project_id, since=old_fp.max_updated_at, max_id=old_fp.max_id)
            for part_ids, texts in iter_texts(conn, project_id=project_id, item_ids=changed):
                rows = np.searchsorted(ids, part_ids)
                if not ((rows < len(ids)) & (ids[np.minimum(rows, len(ids) - 1)] == part_ids)).all():
                    return None  # an id below max_id we never saw (late commit): rebuild
                new_hash = text_hashes(texts)
                diff = new_hash != hashes[rows]
                repl_rows.extend(rows[diff].tolist())
                repl_texts.extend(t for t, d in zip(texts, diff) if d)
                hashes[rows[diff]] = new_hash[diff]
            for part_ids, texts in iter_texts(conn, project_id=project_id, min_id=old_fp.max_id, max_id=fp.max_id):
                new_ids.append(part_ids)
                new_texts.extend(texts)
        n_new = len(new_texts)
        if len(ids) + n_new != fp.count:
            return None  # deletions or late commits: rebuild
        generation = self._next_generation()
        shards = [dict(s) for s in manifest["shards"]]
        if repl_rows:
            self._patch_rows(features, shards, np.asarray(repl_rows), featurizer.transform(repl_texts), generation)
        if new_texts:
            for k in range(0, n_new, self.shard_rows):
                part = new_texts[k : k + self.shard_rows]
                name = f"shard-{generation}-a{k // self.shard_rows:05d}"
                _save_shard(self.directory, name, featurizer.transform(part))
                shards.append({"name": name, "start": len(ids) + k, "stop": len(ids) + k + len(part)})
            ids = np.concatenate([ids, *new_ids])
            hashes = np.concatenate([hashes, text_hashes(new_texts)])
        save_featurizer(featurizer, self.directory / f"featurizer-{generation}.pkl")
        stored = PoolFingerprint(len(ids), fp.max_id, fp.max_updated_at)
        return self._commit(self._manifest(generation, stored, ids, hashes, shards, featurizer,
                                           fitted_rows=manifest["fitted_rows"]))

    def _patch_rows(self, features: ShardedFeatures, shards: list[dict[str, Any]], rows: np.ndarray,
                    replacement: Any, generation: int) -> None:
        """Rewrite the shards holding ``rows`` with those rows replaced."""
        starts = np.array([s["start"] for s in shards])
        which = np.searchsorted(starts, rows, side="right") - 1
        for i in np.unique(which):
            picked = np.flatnonzero(which == i)
            local = rows[picked] - starts[i]
            block = features.shard(int(i))
            if features.sparse:
                n = block.shape[0]
                keep = np.ones(n, dtype=np.float32)
                keep[local] = 0
                place = sp.csr_matrix(
                    (np.ones(len(local), np.float32), (local, np.arange(len(local)))), shape=(n, len(local))
                )
                block = (sp.diags(keep) @ block + place @ sp.csr_matrix(replacement[picked])).tocsr()
                block.eliminate_zeros()
            else:
                block = np.array(block)
                block[local] = replacement[picked]
            name = f"shard-{generation}-r{int(i):05d}"
            _save_shard(self.directory, name, block)
            shards[i]["name"] = name

    # ---------------------------------------------------------------- files
    def _next_generation(self) -> int:
        manifest = self.manifest()
        return 1 if manifest is None else int(manifest["generation"]) + 1

    def _manifest(self, generation: int, fp: PoolFingerprint, ids: np.ndarray, hashes: np.ndarray,
                  shards: list[dict[str, Any]], featurizer: Any, *, fitted_rows: int) -> dict[str, Any]:
        np.save(self.directory / f"ids-{generation}.npy", ids.astype(np.int64))
        np.save(self.directory / f"hashes-{generation}.npy", hashes.astype(np.uint64))
        first = _shard_files(self.directory, shards[0]["name"]) if shards else []
        kind = "dense" if any(p.name.endswith(".dense.npy") for p in first) else "sparse"
        n_features = int(getattr(featurizer, "n_features_out_", 0) or 0)
        if kind == "dense" and first:
            n_features = int(np.load(first[0], mmap_mode="r").shape[1])
        return {
            "featurizer": self.featurizer_name, "fingerprint": fp.as_json(), "generation": generation,
            "n_rows": int(len(ids)), "n_features": n_features, "kind": kind, "fitted_rows": int(fitted_rows),
            "ids": f"ids-{generation}.npy", "hashes": f"hashes-{generation}.npy",
            "featurizer_file": f"featurizer-{generation}.pkl", "shards": shards,
        }

    def _commit(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Write the manifest atomically, then delete files no manifest refers to."""
        tmp = self.directory / "manifest.json.tmp"
        tmp.write_text(json.dumps(manifest, indent=1))
        os.replace(tmp, self.directory / "manifest.json")
        keep = {manifest["ids"], manifest["hashes"], manifest["featurizer_file"], "manifest.json"}
        keep |= {p.name for s in manifest["shards"] for p in _shard_files(self.directory, s["name"])}
        for path in self.directory.iterdir():
            if path.name not in keep and path.is_file():
                path.unlink(missing_ok=True)
        return manifest
