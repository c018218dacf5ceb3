import pytest
from sqlalchemy import select

from labelloop.errors import AlreadyExistsError, AuthError, InvalidInputError
from labelloop.store import reading, writing
from labelloop.store.schema import api_tokens, users
from labelloop.store.users import (
    authenticate_password,
    authenticate_token,
    create_token,
    create_user,
    get_or_create_secret,
    revoke_token,
    set_disabled,
    set_password,
)


def test_passwords_are_stored_as_argon2_hashes(engine):
    with writing(engine) as conn:
        create_user(conn, name="alice", role="labeller", password="correct horse")
    with reading(engine) as conn:
        stored = conn.execute(select(users.c.password_hash)).scalar_one()
        assert stored.startswith("$argon2id$") and "correct horse" not in stored
        assert authenticate_password(conn, name="alice", password="correct horse").role == "labeller"
        with pytest.raises(AuthError):
            authenticate_password(conn, name="alice", password="wrong horse")
        with pytest.raises(AuthError):
            authenticate_password(conn, name="nobody", password="correct horse")


def test_user_rules(engine):
    with writing(engine) as conn:
        create_user(conn, name="bob", role="admin", password="long enough")
        with pytest.raises(AlreadyExistsError):
            create_user(conn, name="bob", role="admin", password="long enough")
        with pytest.raises(InvalidInputError, match="unknown role"):
            create_user(conn, name="carol", role="boss", password="long enough")
        with pytest.raises(InvalidInputError, match="too short"):
            create_user(conn, name="carol", role="admin", password="short")
        with pytest.raises(InvalidInputError):
            create_user(conn, name="has space", role="admin", password="long enough")


def test_disabled_users_cannot_log_in_and_passwords_can_be_reset(engine):
    with writing(engine) as conn:
        user = create_user(conn, name="dave", role="labeller", password="first password")
        set_password(conn, user_id=user.id, password="second password")
        assert authenticate_password(conn, name="dave", password="second password").id == user.id
        set_disabled(conn, user_id=user.id, disabled=True)
        with pytest.raises(AuthError, match="disabled"):
            authenticate_password(conn, name="dave", password="second password")


def test_tokens_are_stored_hashed_and_can_be_revoked(engine):
    with writing(engine) as conn:
        user = create_user(conn, name="erin", role="labeller", password="long enough")
        token = create_token(conn, user_id=user.id, name="laptop")
    with reading(engine) as conn:
        stored = conn.execute(select(api_tokens.c.token_hash)).scalar_one()
        assert token not in stored and len(stored) == 64
        assert authenticate_token(conn, token=token).name == "erin"
        with pytest.raises(AuthError):
            authenticate_token(conn, token=token + "x")
    with writing(engine) as conn:
        token_id = conn.execute(select(api_tokens.c.id)).scalar_one()
        revoke_token(conn, user_id=user.id, token_id=token_id)
    with reading(engine) as conn, pytest.raises(AuthError):
        authenticate_token(conn, token=token)


def test_session_secret_is_created_once(engine):
    with writing(engine) as conn:
        first = get_or_create_secret(conn)
    with writing(engine) as conn:
        assert get_or_create_secret(conn) == first
    assert len(first) >= 32
