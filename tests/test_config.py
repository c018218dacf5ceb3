import dataclasses
from pathlib import Path

import pytest

from labelloop.config import PREFIX, Settings
from labelloop.errors import ConfigError

README = Path(__file__).resolve().parents[1] / "README.md"


SAMPLES = {"trusted_proxies": ("10.0.0.1, 192.168.0.0/16", "10.0.0.1, 192.168.0.0/16")}  # checked values


def _sample(name: str, default: object) -> tuple[str, object]:
    if name in SAMPLES:
        return SAMPLES[name]
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
    raw, expected = _sample(field.name, field.default)
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


@pytest.mark.parametrize("value", ["10.0.0.300", "10.0.0.0/33", "proxy.example.org", "127.0.0.1;10.0.0.1"])
def test_a_bad_trusted_proxy_is_one_line_naming_the_setting_and_the_fix(value):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"LABELLOOP_TRUSTED_PROXIES": value})
    message = str(caught.value)
    assert "\n" not in message and message.startswith("LABELLOOP_TRUSTED_PROXIES: ")
    assert "not an IP address or CIDR network" in message and "such as 127.0.0.1,172.16.0.0/12" in message


def test_trusted_proxies_take_addresses_and_networks():
    from labelloop.config import proxy_networks

    settings = Settings.from_env({"LABELLOOP_TRUSTED_PROXIES": " 127.0.0.1, 172.16.0.0/12 ,::1,"})
    assert [str(n) for n in proxy_networks(settings.trusted_proxies)] == ["127.0.0.1/32", "172.16.0.0/12", "::1/128"]
    assert proxy_networks(Settings.from_env({}).trusted_proxies) == ()
