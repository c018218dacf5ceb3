import dataclasses
from pathlib import Path

import pytest

from labelloop.config import PREFIX, Settings
from labelloop.errors import ConfigError

README = Path(__file__).resolve().parents[1] / "README.md"


def _sample(default: object) -> tuple[str, object]:
    if isinstance(default, bool):
        return "true", True
    if isinstance(default, int):
        return "7", 7
    if isinstance(default, float):
        return "2.5", 2.5
    if isinstance(default, Path):
        return "/tmp/somewhere", Path("/tmp/somewhere")
    return "some-value", "some-value"


@pytest.mark.parametrize("field", dataclasses.fields(Settings), ids=lambda f: f.name)
def test_every_setting_is_read_from_the_environment(field):
    raw, expected = _sample(field.default)
    settings = Settings.from_env({PREFIX + field.name.upper(): raw})
    assert getattr(settings, field.name) == expected


@pytest.mark.parametrize("field", dataclasses.fields(Settings), ids=lambda f: f.name)
def test_every_setting_is_documented_in_the_readme(field):
    assert field.metadata.get("doc"), f"{field.name} has no doc"
    assert PREFIX + field.name.upper() in README.read_text(), f"{field.name} missing from README"


def test_defaults_without_environment():
    settings = Settings.from_env({})
    assert settings.database_url == "sqlite:///labelloop.db"
    assert settings.lease_seconds == 600


def test_command_line_overrides_environment():
    settings = Settings.from_env({"LABELLOOP_DATABASE_URL": "sqlite:///a.db"}, database_url="sqlite:///b.db")
    assert settings.database_url == "sqlite:///b.db"
    assert Settings.from_env({"LABELLOOP_DATABASE_URL": "sqlite:///a.db"}, database_url=None).database_url == (
        "sqlite:///a.db"
    )


def test_bad_values_name_the_variable():
    with pytest.raises(ConfigError, match="LABELLOOP_LEASE_SECONDS='soon' is not a valid int"):
        Settings.from_env({"LABELLOOP_LEASE_SECONDS": "soon"})
