"""Names of projects, tags and users: no control or bidirectional-control characters, not
'.' or '..' (store/names.py), checked by each kind's validation function and by every store
function that creates or renames one (both databases)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from labelloop.errors import InvalidInputError
from labelloop.store import reading, writing
from labelloop.store import tags as store_tags
from labelloop.store.projects import (
    add_tags,
    create_project,
    get_project,
    validate_project_name,
    validate_tag_names,
)
from labelloop.store.schema import projects, tags, users
from labelloop.store.users import create_user, validate_user_name

BAD = [
    ("bell\x07", "control characters are not allowed (it has U+0007)"),
    ("del\x7f", "control characters are not allowed (it has U+007F)"),
    ("c1\x85", "control characters are not allowed (it has U+0085)"),
    ("line\u2028sep", "control characters are not allowed (it has U+2028)"),
    ("admin\u202e", "bidirectional control characters are not allowed (it has U+202E"),
    ("\u202aembedded", "bidirectional control characters are not allowed (it has U+202A"),
    ("iso\u2066late\u2069", "bidirectional control characters are not allowed (it has U+2066"),
    ("pdi\u2069", "bidirectional control characters are not allowed (it has U+2069"),
    ("mark\u200f", "bidirectional control characters are not allowed (it has U+200F"),
    (".", "'.' and '..' are not allowed as names"),
    ("..", "'.' and '..' are not allowed as names"),
]
GOOD = ["Sport", "Personal Stories", "Économie", "شؤون دولية", "体育", "a.b", "...", "v1.0", "🙂 happy"]


@pytest.mark.parametrize(("name", "problem"), BAD)
def test_each_kind_refuses_the_same_characters_with_a_clear_message(name, problem):
    with pytest.raises(InvalidInputError) as project:
        validate_project_name(name)
    assert str(project.value).startswith(f"invalid project name {name!r}: {problem}")
    with pytest.raises(InvalidInputError) as tag:
        validate_tag_names(["ok", name])
    assert str(tag.value).startswith(f"invalid tag name {name!r}: {problem}")
    with pytest.raises(InvalidInputError) as user:
        validate_user_name(name)
    assert str(user.value).startswith(f"invalid user name {name!r}: {problem}")


@pytest.mark.parametrize("name", GOOD)
def test_names_in_any_script_are_fine(name):
    validate_project_name(name)
    validate_tag_names([name])
    if " " not in name:
        validate_user_name(name)


def count(engine, table) -> int:
    with reading(engine) as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


@pytest.mark.parametrize(("name", "problem"), [BAD[4], BAD[1], BAD[10]])
def test_every_store_function_that_creates_or_renames_a_name_refuses_them(engine, name, problem):
    with writing(engine) as conn:
        create_project(conn, name="p", labels=["A", "B"])
    attempts = [
        lambda conn: create_project(conn, name=name, labels=["A"]),
        lambda conn: create_project(conn, name="q", labels=["A", name]),
        lambda conn: add_tags(conn, project_id=get_project(conn, name="p").id, names=[name]),
        lambda conn: store_tags.add_tag(conn, project=get_project(conn, name="p"), name=name, user_id=None),
        lambda conn: store_tags.rename_tag(conn, project=get_project(conn, name="p"), old="A", new=name, user_id=None),
        lambda conn: create_user(conn, name=name, role="admin", password="a long enough password"),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidInputError, match="not allowed"):
            with writing(engine) as conn:
                attempt(conn)
    assert (count(engine, projects), count(engine, tags), count(engine, users)) == (1, 2, 0)
    with reading(engine) as conn:
        assert get_project(conn, name="p").tag_names == ["A", "B"]
