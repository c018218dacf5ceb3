"""Server-side sessions: hashed keys, expiry, logout, and what a password reset or disabling an
account ends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from labelloop.errors import AuthError
from labelloop.store import reading, writing
from labelloop.store import sessions as store_sessions
from labelloop.store import users as store_users
from labelloop.store.schema import sessions, utcnow


def _user(engine, name="ann", role="labeller"):
    with writing(engine) as conn:
        return store_users.create_user(conn, name=name, role=role, password="a long password")


def test_a_session_is_stored_hashed_and_names_its_user(engine):
    ann = _user(engine)
    with writing(engine) as conn:
        key = store_sessions.create_session(conn, user_id=ann.id)
    assert store_sessions.is_session_key(key) and len(key) == 43  # 256 bits
    with reading(engine) as conn:
        row = conn.execute(select(sessions)).one()
        assert row.key_hash == store_sessions.hash_session_key(key) and key not in row.key_hash
        assert timedelta(days=13.9) < row.expires_at - row.created_at <= timedelta(days=14)
        user, expires = store_sessions.user_for_session(conn, key=key)
        assert user.name == "ann" and expires == row.expires_at
        for wrong in (key[:-1] + ("A" if key[-1] != "A" else "B"), "short", "", key + "x"):
            with pytest.raises(AuthError, match="session has ended"):
                store_sessions.user_for_session(conn, key=wrong)
        assert store_sessions.live_sessions(conn, key_hashes=[row.key_hash, "0" * 64]) == {
            row.key_hash: (user, row.expires_at)}


def test_odd_keys_are_no_session_and_never_reach_the_database(engine):
    for odd in (None, 7, 2**80, ["x"], {"a": 1}, "x" * 42 + "\ud800", "é" * 43, "a b" * 15, "x" * 44):
        assert not store_sessions.is_session_key(odd), odd
        with reading(engine) as conn, pytest.raises(AuthError):
            store_sessions.user_for_session(conn, key=odd)
        with writing(engine) as conn:
            assert store_sessions.end_session(conn, key=odd) is False


def test_logout_ends_one_session_only(engine):
    ann = _user(engine)
    with writing(engine) as conn:
        laptop = store_sessions.create_session(conn, user_id=ann.id)
        phone = store_sessions.create_session(conn, user_id=ann.id)
        assert store_sessions.end_session(conn, key=laptop) is True
        assert store_sessions.end_session(conn, key=laptop) is False
    with reading(engine) as conn:
        with pytest.raises(AuthError):
            store_sessions.user_for_session(conn, key=laptop)
        assert store_sessions.user_for_session(conn, key=phone)[0].id == ann.id


def test_expired_sessions_are_refused_and_purged(engine):
    ann = _user(engine)
    with writing(engine) as conn:
        old = store_sessions.create_session(conn, user_id=ann.id)
        conn.execute(update(sessions).values(expires_at=utcnow() - timedelta(seconds=1)))
        new = store_sessions.create_session(conn, user_id=ann.id)  # purges the expired one
    with reading(engine) as conn:
        with pytest.raises(AuthError, match="session has ended"):
            store_sessions.user_for_session(conn, key=old)
        assert conn.execute(select(sessions.c.key_hash)).scalars().all() == [store_sessions.hash_session_key(new)]
    with writing(engine) as conn:
        conn.execute(update(sessions).values(expires_at=utcnow() - timedelta(seconds=1)))
    with reading(engine) as conn:
        with pytest.raises(AuthError, match="session has expired"):
            store_sessions.user_for_session(conn, key=new)
        assert store_sessions.live_sessions(conn, key_hashes=[store_sessions.hash_session_key(new)]) == {}
        assert store_sessions.live_session_counts(conn) == {}
    with writing(engine) as conn:
        assert store_sessions.purge_expired_sessions(conn) == 1


def test_a_password_reset_ends_sessions_and_tokens_unless_tokens_are_kept(engine):
    ann, bob = _user(engine), _user(engine, "bob")
    with writing(engine) as conn:
        keys = [store_sessions.create_session(conn, user_id=ann.id) for _ in range(2)]
        bobs = store_sessions.create_session(conn, user_id=bob.id)
        token = store_users.create_token(conn, user_id=ann.id)
        ended = store_users.set_password(conn, user_id=ann.id, password="a new long password")
    assert ended == store_users.Ended(sessions=2, tokens=1)
    assert ended.describe() == "ended 2 sessions and revoked 1 API token"
    with reading(engine) as conn:
        for key in keys:
            with pytest.raises(AuthError):
                store_sessions.user_for_session(conn, key=key)
        with pytest.raises(AuthError):
            store_users.authenticate_token(conn, token=token)
        assert store_sessions.user_for_session(conn, key=bobs)[0].name == "bob"  # others untouched
    with writing(engine) as conn:
        key = store_sessions.create_session(conn, user_id=ann.id)
        token = store_users.create_token(conn, user_id=ann.id)
        kept = store_users.set_password(conn, user_id=ann.id, password="another long password", keep_tokens=True)
    assert kept == store_users.Ended(sessions=1, tokens=0)
    with reading(engine) as conn:
        assert store_users.authenticate_token(conn, token=token).name == "ann"
        with pytest.raises(AuthError):
            store_sessions.user_for_session(conn, key=key)


def test_disabling_ends_sessions_and_tokens_for_good(engine):
    ann = _user(engine)
    with writing(engine) as conn:
        key = store_sessions.create_session(conn, user_id=ann.id)
        token = store_users.create_token(conn, user_id=ann.id)
        assert store_sessions.live_session_counts(conn) == {ann.id: 1}
        assert store_users.token_counts(conn) == {ann.id: 1}
        assert store_users.set_disabled(conn, user_id=ann.id, disabled=True) == store_users.Ended(1, 1)
        assert store_users.set_disabled(conn, user_id=ann.id, disabled=False) == store_users.Ended(0, 0)
    with reading(engine) as conn:
        with pytest.raises(AuthError):
            store_sessions.user_for_session(conn, key=key)  # enabling again does not revive them
        with pytest.raises(AuthError):
            store_users.authenticate_token(conn, token=token)


def test_a_disabled_users_session_is_refused(engine):
    ann = _user(engine)
    with writing(engine) as conn:
        key = store_sessions.create_session(conn, user_id=ann.id)
        conn.execute(update(store_users.users).values(disabled=True))  # not through set_disabled
    with reading(engine) as conn:
        with pytest.raises(AuthError, match="disabled"):
            store_sessions.user_for_session(conn, key=key)
        assert store_sessions.live_sessions(conn, key_hashes=[store_sessions.hash_session_key(key)]) == {}
