"""config.toml handling and the private, atomic file store."""

from __future__ import annotations

import json
import os
import stat

import pytest

from oauth_core import store as store_mod
from oauth_core.errors import ConfigError, CorruptFileError, SecurityNotice
from oauth_core.provider import Provider
from oauth_core.store import HomeError, Store, read_json, write_json


def test_config_set_get_show_unset(cli, home):
    assert cli("config", "set", "chatgpt.port", "1457").returncode == 0
    assert cli("config", "get", "chatgpt.port").stdout == "1457\n"
    assert "port = 1457" in (home / "config.toml").read_text()  # stored as an integer
    shown = cli("config", "show", "chatgpt", "--json").json
    assert shown["chatgpt"]["port"] == 1457 and shown["chatgpt"]["prefix"] == "chatgpt-"
    assert cli("config", "unset", "chatgpt.port").returncode == 0
    assert cli("config", "get", "chatgpt.port").stdout == "1455\n"


@pytest.mark.parametrize(("key", "value", "message"), [
    ("chatgpt.port", "abc", "chatgpt.port must be an integer, not 'abc'."),
    ("chatgpt.nope", "1", "chatgpt has no setting 'nope'."),
    ("chatgpt", "1", "is not PROVIDER.SETTING"),
    ("nosuch.port", "1", "Unknown provider 'nosuch'"),
])
def test_config_set_refuses_bad_input_and_writes_nothing(cli, home, key, value, message):
    result = cli("config", "set", key, value)
    assert result.returncode == 1
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert not (home / "config.toml").exists()


def test_wrongly_typed_config_value_is_a_clear_error(cli, home):
    home.mkdir()
    (home / "config.toml").write_text('[providers.chatgpt]\nport = "1455"\n')
    result = cli("login", "chatgpt")
    assert result.returncode == 1
    assert "[providers.chatgpt] port must be an integer, not a string" in result.stderr


def test_invalid_toml_is_a_clear_error_naming_the_file(cli, home):
    home.mkdir()
    (home / "config.toml").write_text("[providers.chatgpt\n")
    result = cli("config", "show")
    assert result.returncode == 1
    assert str(home / "config.toml") in result.stderr and "not valid TOML" in result.stderr


def test_config_overrides_reach_the_provider(home):
    from .conftest import write_config

    write_config(home, "chatgpt", issuer="https://idp.example", callback_timeout=42)
    settings = Provider.load("chatgpt", Store(home)).settings
    assert settings["issuer"] == "https://idp.example" and settings["callback_timeout"] == 42
    assert settings["client_id"] == "app_EMoamEEZ73f0CkXaXp7hrann"


def test_write_json_is_private_and_atomic(tmp_path, monkeypatch):
    old = os.umask(0)
    try:
        path = tmp_path / "x.json"
        write_json(path, {"a": 1})
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        # A crash half-way (here: serialisation succeeded, the rename fails) keeps the old file whole.
        monkeypatch.setattr(store_mod.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
        with pytest.raises(HomeError, match="Cannot write .*x.json"):
            write_json(path, {"a": 2})
        assert json.loads(path.read_text()) == {"a": 1}
        assert [p.name for p in tmp_path.iterdir()] == ["x.json"], "no temp file left behind"
    finally:
        os.umask(old)


def test_loose_home_is_tightened_and_reported(tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)  # noqa: S103 - the loose mode under test
    with pytest.warns(SecurityNotice, match="755"):
        Store(home).ensure()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_loose_token_file_is_tightened_before_use(cli, chatgpt_home, idp):
    from oauth_core.testing.seed import seed_sign_in

    seeded = seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home)
    path = chatgpt_home / "chatgpt_oauth.json"
    os.chmod(path, 0o644)  # noqa: S103 - the loose mode under test
    os.chmod(chatgpt_home, 0o755)  # noqa: S103
    result = cli("token", "chatgpt")
    assert result.returncode == 0 and result.stdout.strip() == seeded.access_token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"Note: {path} was readable by other users (mode 644); changed it to 600." in result.stderr
    refreshed = cli("refresh", "chatgpt")
    assert refreshed.returncode == 0
    assert stat.S_IMODE(chatgpt_home.stat().st_mode) == 0o700
    assert "mode 755" in refreshed.stderr


@pytest.mark.parametrize("loose", [0o640, 0o604, 0o660, 0o610])
def test_a_group_or_other_bit_is_enough_to_tighten_the_token_file(cli, chatgpt_home, idp, loose):
    from oauth_core.testing.seed import seed_sign_in

    seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home)
    path = chatgpt_home / "chatgpt_oauth.json"
    os.chmod(path, loose)
    result = cli("token", "chatgpt")
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"(mode {loose:o}); changed it to 600" in result.stderr


@pytest.mark.parametrize("loose", [0o750, 0o705])
def test_a_group_or_other_bit_is_enough_to_tighten_the_home(tmp_path, loose):
    home = tmp_path / "home"
    home.mkdir()
    os.chmod(home, loose)
    with pytest.warns(SecurityNotice, match=f"mode {loose:o}"):
        Store(home).ensure()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_read_json_reports_corrupt_without_quoting_content(tmp_path):
    path = tmp_path / "t.json"
    path.write_text('{"access_token": "sk-secret-value-123456789", oops}')
    with pytest.raises(CorruptFileError) as info:
        read_json(path)
    assert str(path) in str(info.value) and "sk-secret" not in str(info.value)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(CorruptFileError, match="left untouched"):
        read_json(path)
    assert read_json(tmp_path / "missing.json") is None


def test_config_type_check_unit():
    from oauth_core.config import merge

    with pytest.raises(ConfigError, match="must be a list"):
        merge({"fallback_ports": [1457]}, {"fallback_ports": 1457}, path="c.toml", provider="p")
    assert merge({"t": 1.5}, {"t": 2}, path="c.toml", provider="p") == {"t": 2.0}
    with pytest.raises(ConfigError, match="true or false"):
        merge({"flag": True}, {"flag": 1}, path="c.toml", provider="p")


def test_config_set_a_list_of_integers(cli, home):
    assert cli("config", "set", "chatgpt.fallback_ports", "1457, 1458").returncode == 0
    assert cli("config", "get", "chatgpt.fallback_ports").stdout.strip() == "[1457, 1458]"
    bad = cli("config", "set", "chatgpt.fallback_ports", "1457,x")
    assert bad.returncode == 1 and "each item of chatgpt.fallback_ports must be an integer" in bad.stderr
    assert cli("config", "get", "chatgpt.port").returncode == 0  # the provider still loads
