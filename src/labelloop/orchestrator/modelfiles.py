"""Model files: ``models_dir/<project>/<UTC time>_<macro-F1>.joblib`` and their pruning.

A file holds ``{"pipeline": Pipeline([("features", featurizer), ("clf", classifier)]),
"metadata": {...}}``, pickled with the standard (C) pickler, which is many times faster than
joblib's on a large vocabulary; ``joblib.load`` and ``pickle.load`` both read it. The fitted
scikit-learn pipeline predicts on raw text as is::

    bundle = joblib.load(path)
    bundle["pipeline"].predict(["some text"])      # tag ids; metadata["tags"] maps them to names
"""

from __future__ import annotations

import os
import pickle
from datetime import datetime
from pathlib import Path
from typing import Any

from labelloop.learn import build_pipeline


def project_dir(models_dir: Path, *, project_name: str, project_id: int) -> Path:
    """The project's folder under ``models_dir``: its name, unless the name is not a safe
    folder name (``.``, ``..``, hidden, backslashes), then ``project-<id>``."""
    safe = project_name not in {"", ".", ".."} and not project_name.startswith(".") and "\\" not in project_name
    return Path(models_dir) / (project_name if safe else f"project-{project_id}")


def model_file_name(now: datetime, macro_f1: float | None) -> str:
    score = "na" if macro_f1 is None else f"{macro_f1:.4f}"
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}_{score}.joblib"


def save_model(directory: Path, *, now: datetime, macro_f1: float | None, featurizer: Any, classifier: Any,
               metadata: dict[str, Any]) -> Path:
    """Write the pipeline and metadata atomically (temp file, then rename); returns the path.
    A name taken already (two rounds in one second) gets ``-<version>`` appended."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / model_file_name(now, macro_f1)
    if path.exists():
        path = path.with_name(f"{path.stem}-v{metadata.get('version', 'x')}.joblib")
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        pickle.dump({"pipeline": build_pipeline(featurizer, classifier), "metadata": metadata}, fh,
                    protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)
    return path


def prune_models(directory: Path, *, keep: int, in_use: set[str]) -> list[Path]:
    """Delete all but the newest ``keep`` model files (names sort by time), never one in use.
    Returns the deleted paths."""
    if not directory.is_dir():
        return []
    files = sorted(directory.glob("*.joblib"), key=lambda p: p.name)
    keep_set = {str(p) for p in files[-max(keep, 1):]} | set(in_use)
    deleted = []
    for path in files:
        if str(path) not in keep_set:
            path.unlink(missing_ok=True)
            deleted.append(path)
    return deleted
