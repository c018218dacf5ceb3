"""`labelloop user passwd` and `labelloop user list` (both databases): a reset ends sessions and
API tokens (--keep-tokens keeps the tokens), a lost admin password is recovered from the CLI,
the password policy's refusals are one line with exit status 2 and change nothing."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from labelloop.cli import main
from labelloop.errors import AuthError
from labelloop.store import open_engine, reading, writing
from labelloop.store import sessions as store_sessions
from labelloop.store import users as store_users

ANN = "tram window purple seven"


def run(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def people(db_url):
    """admin (admin, generated password) and ann (labeller) with two sessions and a token."""
    added = run("user", "add", "admin", "--role", "admin", "--db", db_url)
    assert added.exit_code == 0, added.output
    assert run("user", "add", "ann", "--role", "labeller", "--password-stdin", "--db", db_url,
               input=ANN + "\n").exit_code == 0
    token = run("token", "create", "ann", "--db", db_url).stdout.strip()
    engine = open_engine(db_url)
    with writing(engine) as conn:
        ann = store_users.get_user(conn, name="ann")
        keys = [store_sessions.create_session(conn, user_id=ann.id) for _ in range(2)]
    yield engine, keys, token
    engine.dispose()


def state(engine, keys, token) -> tuple[int, bool]:
    """(how many of ``keys`` are live sessions, whether ``token`` works)."""
    with reading(engine) as conn:
        live = 0
        for key in keys:
            try:
                store_sessions.user_for_session(conn, key=key)
                live += 1
            except AuthError:
                pass
        try:
            store_users.authenticate_token(conn, token=token)
            works = True
        except AuthError:
            works = False
    return live, works


def logs_in(engine, name, password) -> bool:
    with writing(engine) as conn:
        try:
            return store_users.authenticate_password(conn, name=name, password=password).name == name
        except AuthError:
            return False


def test_passwd_prints_a_new_password_once_and_ends_sessions_and_tokens(db_url, people):
    engine, keys, token = people
    result = run("user", "passwd", "ann", "--db", db_url)
    assert result.exit_code == 0, result.output
    assert result.stderr == "new password for labeller 'ann'; ended 2 sessions and revoked 1 API token\n"
    password = result.stdout.split("password (shown once): ")[1].strip()
    store_users.validate_password(password, user_name="ann")
    assert logs_in(engine, "ann", password) and not logs_in(engine, "ann", ANN)
    assert state(engine, keys, token) == (0, False)


def test_passwd_from_stdin_can_keep_the_tokens(db_url, people):
    engine, keys, token = people
    result = run("user", "passwd", "ann", "--password-stdin", "--keep-tokens", "--db", db_url,
                 input="a fresh passphrase of words\n")
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and "passphrase" not in result.output
    assert result.stderr == ("new password for labeller 'ann'; ended 2 sessions and revoked 0 API tokens "
                             "(tokens kept)\n")
    assert logs_in(engine, "ann", "a fresh passphrase of words")
    assert state(engine, keys, token) == (0, True)


def test_a_lost_admin_password_is_recovered_from_the_cli(db_url, people):
    engine, _, _ = people
    result = run("user", "passwd", "admin", "--db", db_url)
    assert result.exit_code == 0 and "new password for admin 'admin'" in result.stderr
    assert logs_in(engine, "admin", result.stdout.split("password (shown once): ")[1].strip())


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["nobody"], None, "error: no user named 'nobody'\n"),
    (["nobody", "--password-stdin"], "a perfectly fine passphrase\n", "error: no user named 'nobody'\n"),
    (["ann", "--password-stdin"], "short\n", "error: password too short: at least 10 characters; "
                                             "choose a longer passphrase, e.g. four or five unrelated words\n"),
    (["ann", "--password-stdin"], "password123\n", "error: password too common: choose a longer passphrase, "
                                                   "e.g. four or five unrelated words\n"),
    (["ann", "--password-stdin"], "aaaaaaaaaaaaaa\n", 'error: password too easy to guess (repeats like "aaa" are '
                                                      'easy to guess): choose a longer passphrase, e.g. four or '
                                                      'five unrelated words\n'),
    (["ann", "--password-stdin"], "\n", "error: password too short"),
])
def test_passwd_refusals_are_one_line_exit_2_and_change_nothing(db_url, people, args, stdin, message):
    engine, keys, token = people
    result = run("user", "passwd", *args, "--db", db_url, input=stdin)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr
    assert logs_in(engine, "ann", ANN) and state(engine, keys, token) == (2, True)


def test_user_add_applies_the_policy_too(db_url, people):
    engine, _, _ = people
    for password, words in (("qwertyuiop", "too common"), ("nine char", "too short"),
                            ("carolcarolcarol", "too easy to guess")):
        result = run("user", "add", "carol", "--role", "labeller", "--password-stdin", "--db", db_url,
                     input=password + "\n")
        assert result.exit_code == 2 and words in result.stderr and result.stderr.count("\n") == 1, result.stderr
    with reading(engine) as conn:
        assert [u.name for u in store_users.list_users(conn)] == ["admin", "ann"]


def test_user_list_as_a_table_and_as_json(db_url, people):
    engine, _, _ = people
    with writing(engine) as conn:
        bob = store_users.create_user(conn, name="bob", role="labeller", password="a long password")
        store_users.set_disabled(conn, user_id=bob.id, disabled=True)
    table = run("user", "list", "--db", db_url)
    assert table.exit_code == 0 and table.stderr == ""
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["name", "role", "state", "created", "sessions", "tokens"]
    assert [line.split()[:3] for line in lines[1:]] == [["admin", "admin", "active"], ["ann", "labeller", "active"],
                                                        ["bob", "labeller", "disabled"]]
    assert [line.split()[-2:] for line in lines[1:]] == [["0", "0"], ["2", "1"], ["0", "0"]]
    listed = json.loads(run("user", "list", "--json", "--db", db_url).stdout)
    assert [{k: v for k, v in u.items() if k != "created_at"} for u in listed] == [
        {"name": "admin", "role": "admin", "disabled": False, "sessions": 0, "tokens": 0},
        {"name": "ann", "role": "labeller", "disabled": False, "sessions": 2, "tokens": 1},
        {"name": "bob", "role": "labeller", "disabled": True, "sessions": 0, "tokens": 0},
    ]
    assert all(u["created_at"].endswith("+00:00") for u in listed)


def test_user_list_of_a_database_without_users(db_url):
    assert run("init", "p", "--labels", "A,B", "--db", db_url).exit_code == 0
    empty = run("user", "list", "--db", db_url)
    assert empty.exit_code == 0 and empty.stdout == ""
    assert empty.stderr == "no users yet; add one with `labelloop user add NAME --role admin`\n"
    assert run("user", "list", "--json", "--db", db_url).stdout == "[]\n"
