"""Multi-label orchestrator test helpers: a small real multi-label project (Debian package
descriptions and their Debtags, ``../shared/datasets/debian_tags.csv``) on SQLite and PostgreSQL.

``make_debian`` imports ``n`` packages (every 7th row) into a multi-label project with six of
the 42 tags through the importer, ``labelled`` of them with their true set (their Debtags among
the six, maybe none: ``__none__``). ``set_label`` writes one more set on an item as the store
keeps them (an annotation with ``tag_mask``, the item's ``label_mask``), as a labeller or an
audit label.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, select, update

from labelloop.config import Settings
from labelloop.io import ImportOptions, MappingSource, import_source
from labelloop.store import reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.schema import annotations, items

# as tests/conftest.py: the shared data sets beside the repository, or LABELLOOP_TEST_SHARED_DIR
SHARED = Path(os.environ.get("LABELLOOP_TEST_SHARED_DIR") or Path(__file__).resolve().parents[2].parent / "shared") / "datasets"

SET_TAGS = ["interface::commandline", "interface::x11", "interface::graphical", "works-with::audio",
            "use::gameplaying", "works-with::text"]


@dataclasses.dataclass
class Debian:
    engine: Engine
    settings: Settings
    name: str
    truth: dict[int, list[str]]  # item id -> true set (among SET_TAGS)
    labelled: set[int]

    def project(self) -> store_projects.Project:
        with reading(self.engine) as conn:
            return store_projects.get_project(conn, name=self.name)

    def user(self, name: str) -> int:
        with writing(self.engine) as conn:
            return store_users.create_user(conn, name=name, role="labeller", password="a long password").id

    def mask(self, names: list[str]) -> int:
        bits = self.project().tag_bits
        return sum(1 << bits[n] for n in set(names))


def debian_rows(*, n: int, step: int = 7) -> list[dict[str, str]]:
    with open(SHARED / "debian_tags.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return rows[::step][:n]


def set_label(engine: Engine, *, project_id: int, item_id: int, mask: int, user_id: int | None = None,
              audit: bool = False) -> None:
    """One labeller's set on an item, which becomes the item's final set."""
    now = datetime.now(UTC)
    with writing(engine) as conn:
        conn.execute(annotations.insert().values(
            project_id=project_id, item_id=item_id, user_id=user_id, tag_mask=mask,
            source="import" if user_id is None else "human", is_audit=audit, created_at=now, updated_at=now))
        conn.execute(update(items).where(items.c.id == item_id).values(
            label_mask=mask, label_source="human", n_labels=items.c.n_labels + 1))


def make_debian(engine: Engine, settings: Settings, *, n: int = 150, labelled: int = 60,
                name: str = "deb") -> Debian:
    rows = debian_rows(n=n)
    sets = {r["id"]: [t for t in r["labels"].split("|") if t in SET_TAGS] for r in rows}
    every = max(1, n // max(labelled, 1))
    chosen = {r["id"] for i, r in enumerate(rows) if labelled and i % every == 0 and i // every < labelled}
    with writing(engine) as conn:
        store_projects.create_project(conn, name=name, labels=SET_TAGS, seed=7, multi_label=True)
    records = [{"id": r["id"], "title": r["title"], "text": r["text"],
                "labels": ("|".join(sets[r["id"]]) or "__none__") if r["id"] in chosen else ""} for r in rows]
    import_source(
        engine, project=name, source=MappingSource(records), settings=settings,
        options=ImportOptions(id_column="id", text_columns=["title", "text"], label_column="labels",
                              label_separator="|"),
    )
    with reading(engine) as conn:
        proj = store_projects.get_project(conn, name=name)
        found = conn.execute(select(items.c.id, items.c.external_id).where(items.c.project_id == proj.id)).all()
    truth = {r.id: sets[r.external_id] for r in found}
    return Debian(engine, settings, name, truth, {r.id for r in found if r.external_id in chosen})
