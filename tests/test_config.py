"""Profiles and settings: file modes, atomic writes, broken files, precedence."""

from __future__ import annotations

import os
import stat

import pytest

from batchctl.config import (
    LOCAL_BASE_URL,
    Config,
    Profile,
    config_path,
    data_dir,
    load_config,
    resolve_settings,
    save_config,
)
from batchctl.errors import ConfigError


def _save(*profiles: Profile, active: str | None = None) -> None:
    save_config(Config(active=active, profiles={p.name: p for p in profiles}))


def test_dirs_follow_env_overrides(isolation):
    assert config_path() == isolation / "config" / "config.toml"
    assert data_dir() == isolation / "data"


def test_config_file_is_0600_in_a_0700_dir():
    _save(Profile(name="work", base_url="https://api.openai.com/v1", api_key="sk-secret1234"), active="work")
    path = config_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_save_is_atomic_and_leaves_no_temp_files():
    _save(Profile(name="a", base_url="http://h/v1"))
    _save(Profile(name="a", base_url="http://h/v1"), Profile(name="b", base_url="http://i/v1"), active="b")
    assert sorted(os.listdir(config_path().parent)) == ["config.toml"]
    config = load_config()
    assert config.active == "b"
    assert sorted(config.profiles) == ["a", "b"]


def test_round_trip_keeps_every_field():
    original = Profile(
        name="gw",
        base_url="http://localhost:3000",
        provider="newapi",
        api_key="sk-abc",
        channel="7",
        poll_interval=2.5,
        access_token="tok-123456",
        user_id="1",
        limits={"max_requests": 10},
    )
    _save(original)
    assert load_config().profiles["gw"] == original


def test_missing_file_is_an_empty_config():
    config = load_config()
    assert config.profiles == {} and config.active is None


def test_broken_toml_names_file_and_line():
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text('active = "a"\n[profiles.a]\nbase_url = \n')
    with pytest.raises(ConfigError) as info:
        load_config()
    assert str(path) in info.value.message
    assert "line 3" in info.value.message


def test_unknown_provider_is_a_config_error():
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text('[profiles.a]\nbase_url = "http://x"\nprovider = "nope"\n')
    with pytest.raises(ConfigError, match="unknown provider"):
        load_config()


def test_default_is_builtin_local():
    settings = resolve_settings(env={})
    assert settings.profile_name == "local"
    assert settings.provider == "local"
    assert settings.base_url == LOCAL_BASE_URL


def test_precedence_flag_over_env_over_profile():
    _save(
        Profile(name="a", base_url="http://a.example/v1", api_key="sk-profile-a", channel="1"),
        Profile(name="b", base_url="http://b.example/v1", api_key="sk-profile-b"),
        active="a",
    )
    # profile only
    s = resolve_settings(env={})
    assert (s.profile_name, s.base_url, s.api_key, s.channel) == ("a", "http://a.example/v1", "sk-profile-a", "1")
    # env beats the active profile
    env = {
        "BATCHCTL_PROFILE": "b",
        "BATCHCTL_API_KEY": "sk-env",
        "BATCHCTL_BASE_URL": "http://env.example",
        "BATCHCTL_CHANNEL": "5",
    }
    s = resolve_settings(env=env)
    assert (s.profile_name, s.base_url, s.api_key, s.channel) == ("b", "http://env.example/v1", "sk-env", "5")
    assert s.sources["api_key"] == "env BATCHCTL_API_KEY"
    # flags beat env
    s = resolve_settings(profile="a", base_url="http://flag.example/v1", api_key="sk-flag", channel="9", env=env)
    assert (s.profile_name, s.base_url, s.api_key, s.channel) == ("a", "http://flag.example/v1", "sk-flag", "9")
    assert s.sources["base_url"] == "flag"


def test_unknown_profile_lists_known_ones():
    _save(Profile(name="work", base_url="http://x/v1"))
    with pytest.raises(ConfigError) as info:
        resolve_settings(profile="nope", env={})
    assert "work" in info.value.hint and "local" in info.value.hint


def test_api_key_env_indirection_and_openai_fallback():
    _save(
        Profile(name="indirect", base_url="http://x/v1", api_key_env="MY_KEY"),
        Profile(name="oa", base_url="https://api.openai.com/v1", provider="openai"),
    )
    assert resolve_settings(profile="indirect", env={"MY_KEY": "sk-from-env"}).api_key == "sk-from-env"
    assert resolve_settings(profile="oa", env={"OPENAI_API_KEY": "sk-openai"}).api_key == "sk-openai"
    # The OpenAI key never leaks into the built-in local profile.
    assert resolve_settings(env={"OPENAI_API_KEY": "sk-openai"}).api_key is None


def test_wrongly_typed_value_names_file_and_profile():
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text('[profiles.a]\nbase_url = 5\n')
    with pytest.raises(ConfigError) as info:
        load_config()
    assert str(path) in info.value.message and "'a'" in info.value.message and "base_url" in info.value.message


def test_unknown_limit_key_is_a_config_error():
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text('[profiles.a]\nbase_url = "http://x"\n[profiles.a.limits]\nmax_widgets = 3\n')
    with pytest.raises(ConfigError, match="limits.max_widgets"):
        load_config()
