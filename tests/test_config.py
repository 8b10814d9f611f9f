"""Settings come from option > CALLBACK_* environment > callback.toml > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from callback.config import Settings, load_settings
from callback.errors import ConfigError


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "callback.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_any_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.database_url == "sqlite:///callback.db"
    assert settings.timezone == "Asia/Shanghai"
    assert settings.default_area_code == "0571"
    assert settings.origins["timezone"] == "default"


def test_file_beats_default_env_beats_file_option_beats_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, 'database_url = "sqlite:///from-file.db"\ndefault_area_code = "0574"\n')
    from_file = load_settings(environ={})
    assert from_file.database_url == "sqlite:///from-file.db"
    assert from_file.default_area_code == "0574"

    env = {"CALLBACK_DATABASE_URL": "sqlite:///from-env.db"}
    from_env = load_settings(environ=env)
    assert from_env.database_url == "sqlite:///from-env.db"
    assert from_env.origins["database_url"] == "CALLBACK_DATABASE_URL"
    assert from_env.default_area_code == "0574"  # still the file's

    from_option = load_settings({"database_url": "sqlite:///from-option.db"}, environ=env)
    assert from_option.database_url == "sqlite:///from-option.db"
    assert from_option.origins["database_url"] == "option"


def test_a_none_option_is_not_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({"database_url": None}, environ={"CALLBACK_DATABASE_URL": "x://"})
    assert settings.database_url == "x://"


def test_config_file_from_environment_and_option(tmp_path: Path) -> None:
    other = tmp_path / "other.toml"
    other.write_text('timezone = "Asia/Urumqi"\n', encoding="utf-8")
    assert load_settings(environ={"CALLBACK_CONFIG": str(other)}).timezone == "Asia/Urumqi"
    assert load_settings(environ={}, config_file=other).timezone == "Asia/Urumqi"


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(environ={}, config_file=tmp_path / "nope.toml")


def test_unknown_setting_names_the_file_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = write_config(tmp_path, 'databse_url = "sqlite:///typo.db"\n')
    with pytest.raises(ConfigError, match="databse_url") as info:
        load_settings(environ={})
    assert str(path) in str(info.value)


def test_tables_are_kept_as_sections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, '[dialers.twilio]\naccount_sid = "AC1"\n')
    settings = load_settings(environ={})
    assert settings.section("dialers.twilio") == {"account_sid": "AC1"}
    assert settings.section("dialers.sip") == {}


def test_broken_toml_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, "timezone = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(environ={})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("timezone", "Mars/Olympus", "unknown time zone"),
        ("default_area_code", "571", "area code"),
        ("default_area_code", "05710", "area code"),
    ],
)
def test_bad_values_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str, value: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=message):
        load_settings(environ={f"CALLBACK_{key.upper()}": value})


def test_settings_give_a_time_zone() -> None:
    assert str(Settings(timezone="Asia/Shanghai").tz) == "Asia/Shanghai"
