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
    generate_password,
    get_or_create_secret,
    revoke_token,
    set_disabled,
    set_password,
    validate_password,
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
        create_user(conn, name="bob", role="admin", password="a long password")
        with pytest.raises(AlreadyExistsError):
            create_user(conn, name="bob", role="admin", password="a long password")
        with pytest.raises(InvalidInputError, match="unknown role"):
            create_user(conn, name="carol", role="boss", password="a long password")
        with pytest.raises(InvalidInputError, match="too short"):
            create_user(conn, name="carol", role="admin", password="short")
        with pytest.raises(InvalidInputError, match="too short: at least 10 characters"):
            create_user(conn, name="carol", role="admin", password="nine char")
        with pytest.raises(InvalidInputError):
            create_user(conn, name="has space", role="admin", password="a long password")


def test_disabled_users_cannot_log_in_and_passwords_can_be_reset(engine):
    with writing(engine) as conn:
        user = create_user(conn, name="dave", role="labeller", password="first password")
        set_password(conn, user_id=user.id, password="second password")
        assert authenticate_password(conn, name="dave", password="second password").id == user.id
        set_disabled(conn, user_id=user.id, disabled=True)
        with pytest.raises(AuthError, match="disabled"):
            authenticate_password(conn, name="dave", password="second password")


@pytest.mark.parametrize(("password", "message"), [
    ("password123", "password too common: choose a longer passphrase"),
    ("qwertyuiop", "password too common"),
    ("Password1!", "password too common"),
    ("iloveyou12", "password too common"),
    ("aaaaaaaaaaaa", "password too easy to guess"),
    ("abcdefghij", "password too easy to guess"),
    ("1234567890", "password too common"),
    ("x" * 1025, "password too long"),
])
def test_common_and_guessable_passwords_are_refused_with_advice(password, message):
    with pytest.raises(InvalidInputError, match=message) as refused:
        validate_password(password)
    assert "passphrase" in str(refused.value) or "too long" in str(refused.value)


def test_a_password_made_of_the_user_name_is_refused_and_good_ones_pass():
    validate_password("Zbigniew_Q7")  # fine for someone else...
    with pytest.raises(InvalidInputError, match="too easy to guess"):
        validate_password("Zbigniew_Q7", user_name="zbigniew")  # ...not for zbigniew
    for good in ("correct horse", "a long password", "tram window purple 7", "x" * 40 + " seven blue tigers" * 5):
        validate_password(good, user_name="carol")
    for _ in range(200):
        validate_password(generate_password())


def test_a_refused_password_changes_nothing(engine):
    with writing(engine) as conn:
        user = create_user(conn, name="fay", role="labeller", password="first password")
        with pytest.raises(InvalidInputError):
            set_password(conn, user_id=user.id, password="password123")
        assert authenticate_password(conn, name="fay", password="first password").id == user.id


def test_tokens_are_stored_hashed_and_can_be_revoked(engine):
    with writing(engine) as conn:
        user = create_user(conn, name="erin", role="labeller", password="a long password")
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
