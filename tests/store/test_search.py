"""Full-text search (store/search.py): syntax, ranking, counts, the index kept in step; both databases."""

from __future__ import annotations

import random
import string

import pytest
from sqlalchemy import delete, insert, select, update

from labelloop.errors import InvalidInputError, SearchSyntaxError
from labelloop.store import projects as store_projects
from labelloop.store import reading, search, writing
from labelloop.store.items import rand_key
from labelloop.store.schema import items, utcnow
from labelloop.store.search_syntax import parse, to_fts5, to_tsquery

TEXTS = [
    "The cat sat on the mat",                    # 0
    "A dog chased the cat",                      # 1
    "Dogs and cats living together",             # 2
    "New York is a big city",                    # 3
    "York is old; new buildings are rare",       # 4
    "Email me at the e-mail address",            # 5
    "Labelling is fun; labels help models",      # 6
    "cat cat cat cat: a page about the cat",     # 7
    "ÉCOLE publique et Straße",                  # 8
]


def add_items(conn, project, texts, *, prefix="x"):
    now = utcnow()
    conn.execute(insert(items), [
        {"project_id": project.id, "external_id": f"{prefix}{i}", "display": {"text": t}, "text": t,
         "rand": rand_key(project.seed, f"{prefix}{i}"), "created_at": now, "updated_at": now}
        for i, t in enumerate(texts)])
    return list(conn.execute(select(items.c.id).where(items.c.project_id == project.id)
                             .order_by(items.c.id)).scalars())


@pytest.fixture
def setup(engine):
    with writing(engine) as conn:
        p = store_projects.create_project(conn, name="p", labels=["A", "B"], seed=1)
        other = store_projects.create_project(conn, name="q", labels=["A", "B"], seed=2)
        ids = add_items(conn, p, TEXTS)
        add_items(conn, other, ["the cat of another project", "new york elsewhere"], prefix="o")
    return engine, p, ids


def found(engine, project, query):
    with reading(engine) as conn:
        cond = search.match_condition(conn, project_id=project.id, query=query)
        return {int(i) for i in conn.execute(select(items.c.id).where(cond)).scalars()}


def pos(ids, *which):
    return {ids[i] for i in which}


def test_words_phrases_prefixes_and_booleans(setup):
    engine, p, ids = setup
    assert found(engine, p, "cat") == pos(ids, 0, 1, 7)  # a word, case ignored; "cats" is another word
    assert found(engine, p, "CAT") == pos(ids, 0, 1, 7)
    assert found(engine, p, "cat*") == pos(ids, 0, 1, 2, 7)
    assert found(engine, p, '"new york"') == pos(ids, 3)  # a phrase: next to each other, in order
    assert found(engine, p, "new york") == pos(ids, 3, 4)  # both words anywhere
    assert found(engine, p, "new AND york") == pos(ids, 3, 4)
    assert found(engine, p, "dog OR dogs") == pos(ids, 1, 2)
    assert found(engine, p, "cat -dog") == pos(ids, 0, 7)
    assert found(engine, p, "cat NOT dog") == pos(ids, 0, 7)
    assert found(engine, p, "(dog OR york) -new") == pos(ids, 1)
    assert found(engine, p, "label*") == pos(ids, 6)
    assert found(engine, p, '"big ci"*') == pos(ids, 3)
    assert found(engine, p, "e-mail") == pos(ids, 5)  # a phrase of its words on both databases
    assert found(engine, p, "école") == pos(ids, 8)  # case folding beyond ASCII; no accent folding
    assert found(engine, p, "ecole") == set()
    assert found(engine, p, "nothing") == set()
    assert found(engine, p, "or and not") == set()  # lower case: plain words, which no item has


def test_other_projects_items_never_match(setup):
    engine, p, ids = setup
    with reading(engine) as conn:
        q = store_projects.get_project(conn, name="q")
    assert len(found(engine, q, "cat")) == 1
    assert found(engine, p, "another") == set()


def test_ranking_puts_the_best_match_first(setup):
    engine, p, ids = setup
    with reading(engine) as conn:
        ranked = search.ranked_ids(conn, project_id=p.id, query="cat", limit=20)
        assert ranked[0] == ids[7]  # four times "cat"
        assert set(ranked) == pos(ids, 0, 1, 7)
        assert search.ranked_ids(conn, project_id=p.id, query="cat", limit=1, offset=1) == ranked[1:2]
        assert search.ranked_ids(conn, project_id=p.id, query="cat", limit=5, offset=3) == []


def test_counts_and_the_cap(setup):
    engine, p, ids = setup
    with reading(engine) as conn:
        assert search.count_matches(conn, project_id=p.id, query="cat") == (3, True)
        assert search.count_matches(conn, project_id=p.id, query="cat", cap=3) == (3, True)
        assert search.count_matches(conn, project_id=p.id, query="cat", cap=2) == (2, False)
        assert search.count_matches(conn, project_id=p.id, query="zebra") == (0, True)


def test_ranking_past_the_window_lists_the_other_matches_once(engine, monkeypatch):
    monkeypatch.setattr(search, "RANK_WINDOW", 5)
    with writing(engine) as conn:
        p = store_projects.create_project(conn, name="p", labels=["A", "B"], seed=1)
        ids = add_items(conn, p, [("word " * (1 + i % 4)) + f"n{i}" for i in range(13)])
    with reading(engine) as conn:
        pages = [search.ranked_ids(conn, project_id=p.id, query="word", limit=4, offset=o) for o in range(0, 16, 4)]
        whole = search.ranked_ids(conn, project_id=p.id, query="word", limit=100)
    flat = [i for page in pages for i in page]
    assert flat == whole and sorted(flat) == ids  # every match once, in one order
    assert flat[5:] == sorted(flat[5:])  # past the window: id order


def test_index_follows_inserts_updates_and_deletes(setup):
    engine, p, ids = setup
    with writing(engine) as conn:
        conn.execute(update(items).where(items.c.id == ids[0]).values(text="a zebra now"))
        conn.execute(update(items).where(items.c.id == ids[1]).values(n_labels=0))  # text unchanged
        conn.execute(delete(items).where(items.c.id == ids[7]))
    assert found(engine, p, "zebra") == pos(ids, 0)
    assert found(engine, p, "cat") == pos(ids, 1)
    with reading(engine) as conn:
        assert search.count_matches(conn, project_id=p.id, query="mat") == (0, True)


BAD = ['"open', "(a", "a)", "a AND", "OR a", "-spam", "NOT spam", "a OR -b", "!!!", "()", "a*b", "", "   ",
       "x" * 501, " ".join(["w"] * 40), "(" * 20 + "a" + ")" * 20, "a - b", "--a"]


@pytest.mark.parametrize("query", BAD)
def test_bad_queries_are_search_syntax_errors(setup, query):
    engine, p, _ = setup
    with reading(engine) as conn:
        for call in (lambda: search.ranked_ids(conn, project_id=p.id, query=query, limit=5),
                     lambda: search.count_matches(conn, project_id=p.id, query=query)):
            with pytest.raises(SearchSyntaxError) as info:
                call()
            assert isinstance(info.value, InvalidInputError)  # a 422 and exit status 2
            assert "\n" not in str(info.value) and str(info.value)


def test_random_strings_never_reach_the_database_as_bad_syntax(setup):
    """Fuzz: every string is either a clean SearchSyntaxError or a query both databases run."""
    engine, p, _ = setup
    rng = random.Random(13)
    alphabet = string.ascii_letters + string.digits + ' "()*-:^+~&|!.,;\'\\%_éß中' + "\t\n"
    words = ["AND", "OR", "NOT", "-", "*", '"', "(", ")", "cat", "new", "NEAR", "york*"]
    ran = 0
    with reading(engine) as conn:
        for n in range(400):
            if n % 2:
                q = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
            else:
                q = " ".join(rng.choice(words) for _ in range(rng.randint(1, 7)))
            try:
                search.ranked_ids(conn, project_id=p.id, query=q, limit=3)
                search.count_matches(conn, project_id=p.id, query=q, cap=5)
                ran += 1
            except SearchSyntaxError:
                pass
    assert ran > 50


def test_rendering_quotes_every_token():
    node = parse('"new york" OR bos* -x (a AND b)')
    assert to_fts5(node) == '("new york" OR (("bos" * AND ("a" AND "b")) NOT ("x")))'
    assert to_tsquery(node) == "(('new' <-> 'york') | ('bos':* & !'x' & ('a' & 'b')))"
    assert to_tsquery(parse("a:b")) == "('a' <-> 'b')"


def test_postgresql_searches_the_stored_tsvector_through_its_gin_index(engine):
    """The column follows the text (generated), and matches, phrases and ranking read it
    through ix_items_search instead of parsing every row's text again."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's stored tsvector (SQLite searches its FTS5 table)")
    from sqlalchemy import text

    with writing(engine) as conn:
        project = store_projects.create_project(conn, name="tsv", labels=["A", "B"], seed=1)
        ids = add_items(conn, project, TEXTS)
        conn.execute(update(items).where(items.c.id == ids[3]).values(text="a mat in the city"))
        stored = conn.execute(text("SELECT search_tsv::text FROM items WHERE id = :i"), {"i": ids[3]}).scalar_one()
        assert stored == "'a':1 'city':5 'in':3 'mat':2 'the':4"
        cond = search.match_condition(conn, project_id=project.id, query='"the mat"')
        plan = "\n".join(conn.execute(text("EXPLAIN " + str(select(items.c.id).where(cond).compile(
            conn, compile_kwargs={"literal_binds": True}))), {}).scalars())
        assert "search_tsv @@" in plan and "to_tsvector(" not in plan, plan  # read, never parsed again
        indexdef = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_items_search'"
                                         " AND schemaname = current_schema()")).scalar_one()
        assert "gin (search_tsv)" in indexdef
        assert search.ranked_ids(conn, project_id=project.id, query='"the mat"', limit=5) == [ids[0]]
        assert sorted(search.ranked_ids(conn, project_id=project.id, query='mat', limit=5)) == [ids[0], ids[3]]
