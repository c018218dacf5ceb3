"""Orchestrator test helpers: a small real project (BBC news articles) on SQLite and PostgreSQL.

The articles come from the installed demo corpus (:mod:`labelloop.io.demo_data`, the same BBC
news set as ``../shared/datasets/bbc_news.csv``), so these tests run wherever the package is
installed. ``bbc`` imports 160 articles (every 14th of the 2,225, so all five topics) through the real
importer, the labels of ``labelled`` of them (evenly spread) kept as human labels (source
``import``) and the rest unlabelled; the true topic of every item stays in ``truth``.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import Engine, select

from labelloop.config import Settings
from labelloop.io import ImportOptions, MappingSource, import_source
from labelloop.io.demo_data import read_articles
from labelloop.store import reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store.schema import items

TAGS = ["business", "entertainment", "politics", "sports", "tech"]


@dataclasses.dataclass
class Bbc:
    engine: Engine
    settings: Settings
    name: str
    truth: dict[int, str]  # item id -> true topic
    labelled: set[int]  # item ids imported with their label

    def project(self) -> store_projects.Project:
        with reading(self.engine) as conn:
            return store_projects.get_project(conn, name=self.name)

    def user(self, name: str) -> int:
        with writing(self.engine) as conn:
            return store_users.create_user(conn, name=name, role="labeller", password="a long password").id


def articles(*, n: int, step: int) -> list[dict[str, str]]:
    """Every ``step``-th article of the demo corpus (``id``, ``title``, ``body``, ``label``), at most ``n``."""
    rows = [{**a, "label": a["topic"]} for a in read_articles()]
    return rows[::step][:n]


def make_bbc(engine: Engine, settings: Settings, *, n: int = 160, labelled: int = 40,
             only_tag: str | None = None, name: str = "bbc") -> Bbc:
    rows = articles(n=n, step=14)
    records = []
    every = max(1, n // max(labelled, 1))
    for i, row in enumerate(rows):
        keep = labelled > 0 and i % every == 0 and i // every < labelled
        keep = keep and (only_tag is None or row["label"] == only_tag)
        records.append({"id": row["id"], "title": row["title"], "body": row["body"],
                        "label": row["label"] if keep else ""})
    with writing(engine) as conn:
        store_projects.create_project(conn, name=name, labels=TAGS, seed=7)
    import_source(
        engine, project=name, source=MappingSource(records),
        options=ImportOptions(id_column="id", text_columns=["title", "body"], label_column="label"),
        settings=settings,
    )
    topic = {r["id"]: r["label"] for r in rows}
    with reading(engine) as conn:
        proj = store_projects.get_project(conn, name=name)
        found = conn.execute(
            select(items.c.id, items.c.external_id, items.c.label_tag_id).where(items.c.project_id == proj.id)
        ).all()
    truth = {r.id: topic[r.external_id] for r in found}
    return Bbc(engine, settings, name, truth, {r.id for r in found if r.label_tag_id is not None})
