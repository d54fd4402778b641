"""`oauth-hub export`: each tool's file parsed by its own parser and checked against the tool's schema;
merging keeps other entries; a backup is made; --print writes nothing; logout removes what export wrote.

Sign-ins are seeded from the fakes (`seed_sign_in`) and model entries are listed through the providers'
own hooks against the fakes, as a login writes them.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from oauth_core.accounts import logout
from oauth_core.errors import OAuthHubError
from oauth_core.exporters import (
    API_CHAT,
    export_models,
    exported,
    exporter_names,
    hookimpl,
    load_exporter,
    marked,
    merge_mapping,
    register_exporter,
    remove_mapping,
    unregister_exporter,
)
from oauth_core.testing.seed import seed_sign_in

from .test_serve import seed_models

CHATGPT_SOURCE = "chatgpt-oauth-plugin"
API_KEY = "sk-test-export-key-0001"


@pytest.fixture
def api_key_account(chatgpt_home, idp):
    """A ChatGPT account with an API key (platform org): entries go straight to the API."""
    idp.issued_api_keys.add(API_KEY)
    seeded = seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, api_key=API_KEY)
    seed_models("chatgpt", chatgpt_home)
    return seeded


@pytest.fixture
def subscription_account(chatgpt_home, subscription):
    seeded = seed_sign_in("chatgpt", subscription.mint_tokens(), home=chatgpt_home)
    seed_models("chatgpt", chatgpt_home)
    return seeded


@pytest.fixture
def claude_account(claude_home, anthropic):
    seeded = seed_sign_in("claude_code", anthropic.mint_tokens(), home=claude_home)
    seed_models("claude_code", claude_home)
    return seeded


def stored_names(home: Path, provider: str) -> dict[str, str]:
    """Entry name -> upstream model id, for the provider's own entries."""
    entries = json.loads((home / f"{provider}_models.json").read_text())
    return {k: v["name"] for k, v in entries.items()}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- each tool's format, parsed by its own parser and checked against its schema ---------------


def test_code_puppy_entries_match_its_schema(home, api_key_account, tmp_path):
    target = tmp_path / "extra_models.json"
    result = export_models("chatgpt", "code_puppy", output=target, home=home)

    data = json.loads(target.read_text())
    assert set(data) == set(stored_names(home, "chatgpt")) == set(result.keys)
    for key, entry in data.items():
        assert entry["type"] == "custom_openai"  # a type Code Puppy's model factory builds with an endpoint
        assert entry["name"] == stored_names(home, "chatgpt")[key]
        assert entry["custom_endpoint"]["url"].endswith("/v1")
        assert entry["custom_endpoint"]["api_key"] == "$CHATGPT_OAUTH_API_KEY"
        assert isinstance(entry["context_length"], int) and entry["context_length"] > 0
        assert entry["oauth_source"] == CHATGPT_SOURCE
    assert API_KEY not in target.read_text()
    assert mode(target) == 0o600


def test_code_puppy_subscription_for_messages_points_at_serve(home, claude_account, tmp_path):
    target = tmp_path / "extra_models.json"
    export_models("claude_code", output=target, home=home, serve_port=4242)
    data = json.loads(target.read_text())
    assert data
    for entry in data.values():
        assert entry["type"] == "custom_anthropic"
        # The Anthropic SDK inside Code Puppy adds /v1/messages to the gateway's root.
        assert entry["custom_endpoint"] == {"url": "http://127.0.0.1:4242", "api_key": "$OAUTH_HUB_SERVE_KEY"}
    sent = {f"claude_code/{m}" for m in stored_names(home, "claude_code").values()}
    assert {e["name"] for e in data.values()} == sent
    assert claude_account.access_token not in target.read_text()


def test_code_puppy_takes_responses_models_through_the_gateway(home, subscription_account, tmp_path):
    target = tmp_path / "extra_models.json"
    result = export_models("chatgpt", output=target, home=home)
    assert result.skipped == [] and set(result.keys) == set(stored_names(home, "chatgpt"))
    data = json.loads(target.read_text())
    for key, entry in data.items():
        assert entry["type"] == "custom_openai_responses"  # pydantic-ai's OpenAIResponsesModel
        assert entry["name"] == "chatgpt/" + stored_names(home, "chatgpt")[key]
        assert entry["custom_endpoint"] == {"url": "http://127.0.0.1:4141/v1", "api_key": "$OAUTH_HUB_SERVE_KEY"}


def test_no_built_in_exporter_skips_a_model(home, subscription_account, claude_account):
    """Through the gateway every tool reaches every model, in the API the tool speaks."""
    for name in exporter_names():
        for provider in ("chatgpt", "claude_code"):
            result = export_models(provider, name, print_only=True, home=home)
            assert result.skipped == [] and set(result.models) == set(stored_names(home, provider)), (name, provider)


def test_llm_yaml_matches_extra_openai_models_schema(home, api_key_account, tmp_path):
    target = tmp_path / "extra-openai-models.yaml"
    result = export_models("chatgpt", "llm", output=target, home=home)

    items = yaml.safe_load(target.read_text())
    assert isinstance(items, list) and len(items) == len(stored_names(home, "chatgpt"))
    for item in items:
        assert isinstance(item["model_id"], str) and isinstance(item["model_name"], str)
        assert item["model_name"] == stored_names(home, "chatgpt")[item["model_id"]]
        assert item["api_base"].endswith("/v1")
        assert item["api_key_name"] == "oauth-hub-chatgpt"
        assert item["oauth_source"] == CHATGPT_SOURCE and item["supports_tools"] is True
        assert set(item) <= {"model_id", "model_name", "api_base", "api_key_name", "headers", "oauth_source",
                             "supports_tools"}
    assert any("llm keys set oauth-hub-chatgpt" in line for line in result.instructions)
    assert API_KEY not in target.read_text()


def test_litellm_yaml_matches_the_proxy_config_schema(home, claude_account, tmp_path):
    target = tmp_path / "litellm.yaml"
    target.write_text("general_settings:\n  master_key: os.environ/LITELLM_MASTER_KEY\n")
    export_models("claude_code", "litellm", output=target, home=home)

    config = yaml.safe_load(target.read_text())
    assert config["general_settings"] == {"master_key": "os.environ/LITELLM_MASTER_KEY"}
    deployments = config["model_list"]
    assert len(deployments) == len(stored_names(home, "claude_code"))
    for d in deployments:
        params = d["litellm_params"]
        assert isinstance(d["model_name"], str)
        assert params["model"] == "anthropic/claude_code/" + stored_names(home, "claude_code")[d["model_name"]]
        assert params["api_base"] == "http://127.0.0.1:4141"  # LiteLLM adds /v1/messages
        assert params["api_key"] == "os.environ/OAUTH_HUB_SERVE_KEY"
        assert d["model_info"]["mode"] == "chat" and d["model_info"]["oauth_source"] == "claude-code-plugin"


def test_litellm_has_no_default_file(home, api_key_account):
    with pytest.raises(OAuthHubError, match="--output"):
        export_models("chatgpt", "litellm", home=home)


def test_litellm_responses_models_use_the_bridge_prefix(home, subscription_account, idp):
    result = export_models("chatgpt", "litellm", print_only=True, home=home)
    config = yaml.safe_load(result.text)
    models = {d["litellm_params"]["model"] for d in config["model_list"]}
    assert models == {f"openai/responses/chatgpt/{m}" for m in stored_names(home, "chatgpt").values()}
    assert {d["litellm_params"]["api_base"] for d in config["model_list"]} == {"http://127.0.0.1:4141/v1"}
    assert {d["model_info"]["mode"] for d in config["model_list"]} == {"responses"}
    # LiteLLM's proxy refuses to start without a master key: the instructions say how to set one.
    assert any('export LITELLM_MASTER_KEY="sk-' in line for line in result.instructions)


def test_aider_metadata_matches_litellm_model_cost_schema(home, api_key_account, tmp_path):
    target = tmp_path / ".aider.model.metadata.json"
    result = export_models("chatgpt", "aider", output=target, home=home)

    data = json.loads(target.read_text())
    assert set(data) == {f"openai/{m}" for m in stored_names(home, "chatgpt").values()}
    for entry in data.values():
        assert isinstance(entry["max_input_tokens"], int)
        assert entry["litellm_provider"] == "openai" and entry["mode"] == "chat"
    assert any("OPENAI_API_BASE=" in line and "aider --model openai/" in line for line in result.instructions)
    assert API_KEY not in target.read_text()


def test_opencode_json_matches_its_provider_schema(home, subscription_account, tmp_path):
    target = tmp_path / "opencode.json"
    target.write_text(json.dumps({"$schema": "https://opencode.ai/config.json", "theme": "opencode",
                                  "provider": {"mine": {"npm": "@ai-sdk/openai-compatible", "models": {}}}}))
    result = export_models("chatgpt", "opencode", output=target, home=home)

    config = json.loads(target.read_text())
    assert config["theme"] == "opencode" and "mine" in config["provider"]
    block = config["provider"]["oauth-hub-chatgpt"]
    assert block["npm"] == "@ai-sdk/openai"  # its default model speaks the Responses API
    assert block["options"] == {"baseURL": "http://127.0.0.1:4141/v1", "apiKey": "{env:OAUTH_HUB_SERVE_KEY}"}
    assert set(block["models"]) == set(stored_names(home, "chatgpt").values())
    # Picked by the upstream id, sent as the gateway's <provider>/<model>.
    assert all(m == {"name": k, "id": f"chatgpt/{k}"} for k, m in block["models"].items())
    assert result.keys == ["oauth-hub-chatgpt"]
    assert any("opencode -m oauth-hub-chatgpt/" in line for line in result.instructions)


def test_opencode_messages_base_url_ends_in_v1(home, claude_account):
    result = export_models("claude_code", "opencode", print_only=True, home=home)
    block = json.loads(result.text)["provider"]["oauth-hub-claude_code"]
    assert block["npm"] == "@ai-sdk/anthropic"
    assert block["options"]["baseURL"] == "http://127.0.0.1:4141/v1"  # @ai-sdk/anthropic adds /messages


def test_default_paths_follow_each_tools_rules(tmp_path):
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
           "LLM_USER_PATH": str(tmp_path / "llm")}
    home = tmp_path / "me"

    def path(name, environ):
        return load_exporter(name).call("default_path", environ=environ, home=home)

    assert path("code_puppy", env) == str(tmp_path / "data" / "code_puppy" / "extra_models.json")
    assert path("code_puppy", {}) == str(home / ".code_puppy" / "extra_models.json")
    assert path("llm", env) == str(tmp_path / "llm" / "extra-openai-models.yaml")
    assert path("opencode", env) == str(tmp_path / "cfg" / "opencode" / "opencode.json")
    assert path("opencode", {}) == str(home / ".config" / "opencode" / "opencode.json")
    assert path("aider", {}) == str(home / ".aider.model.metadata.json")
    assert path("litellm", env) is None


def test_default_target_is_used_when_no_output_is_given(home, api_key_account, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    result = export_models("chatgpt", home=home)
    assert result.path == str(tmp_path / "xdg" / "code_puppy" / "extra_models.json")
    assert json.loads(Path(result.path).read_text())


# -- merging, backups, --print, secrets ----------------------------------------------------------


def test_merge_keeps_foreign_entries_and_backs_up_with_the_same_mode(home, api_key_account, tmp_path):
    target = tmp_path / "extra_models.json"
    foreign = {"my-model": {"type": "custom_openai", "name": "x", "custom_endpoint": {"url": "http://x"}},
               "other-plugin": {"type": "openai", "name": "y", "oauth_source": "someone-else"}}
    target.write_text(json.dumps(foreign))
    os.chmod(target, 0o640)
    original = target.read_bytes()

    result = export_models("chatgpt", output=target, home=home)

    data = json.loads(target.read_text())
    assert data["my-model"] == foreign["my-model"] and data["other-plugin"] == foreign["other-plugin"]
    assert set(data) - set(foreign) == set(result.keys)
    assert mode(target) == 0o640
    backup = Path(result.backup)
    assert backup.name.startswith("extra_models.json.bak-") and backup.read_bytes() == original
    assert mode(backup) == 0o640


def test_re_export_replaces_our_entries_and_drops_stale_ones(home, api_key_account, tmp_path, idp):
    target = tmp_path / "extra_models.json"
    first = export_models("chatgpt", output=target, home=home)
    again = export_models("chatgpt", output=target, home=home)
    assert again.unchanged and not again.written and again.backup is None

    idp.models = ["gpt-4o"]
    seed_models("chatgpt", home)
    third = export_models("chatgpt", output=target, home=home)
    assert set(json.loads(target.read_text())) == {"chatgpt-gpt-4o"} == set(third.keys)
    assert third.removed_stale == len(first.keys) - 1


def test_an_entry_of_someone_elses_with_our_name_wins(home, api_key_account, tmp_path):
    target = tmp_path / "extra_models.json"
    theirs = {"type": "custom_openai", "name": "theirs", "custom_endpoint": {"url": "http://mine"}}
    target.write_text(json.dumps({"chatgpt-gpt-4o": theirs}))
    result = export_models("chatgpt", output=target, home=home)
    assert result.conflicts == ["chatgpt-gpt-4o"] and "chatgpt-gpt-4o" not in result.keys
    assert json.loads(target.read_text())["chatgpt-gpt-4o"] == theirs


def test_print_writes_nothing(home, api_key_account, tmp_path):
    target = tmp_path / "extra-openai-models.yaml"
    target.write_text("- model_id: mine\n  model_name: mine\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = export_models("chatgpt", "llm", output=target, print_only=True, home=home)
    assert target.read_text() == "- model_id: mine\n  model_name: mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no backup either
    assert exported("chatgpt", home=home) == []  # and no record
    assert [i["model_id"] for i in yaml.safe_load(result.text)][0] == "mine"
    assert len(yaml.safe_load(result.text)) == 1 + len(stored_names(home, "chatgpt"))


def test_secrets_only_with_include_secrets(home, api_key_account, subscription_account, tmp_path):
    # subscription_account re-seeded the sign-in without a key: entries go through serve.
    target = tmp_path / "litellm.yaml"
    plain = export_models("chatgpt", "litellm", output=target, home=home)
    assert "os.environ/OAUTH_HUB_SERVE_KEY" in target.read_text()
    assert not (home / "serve_key").exists()
    target.chmod(0o644)  # a tool's file, readable by others, as many are
    with_secret = export_models("chatgpt", "litellm", output=target, include_secrets=True, home=home)
    key = (home / "serve_key").read_text().strip()
    assert key in target.read_text() and "os.environ/" not in target.read_text()
    assert plain.keys == with_secret.keys
    assert stat.S_IMODE(target.stat().st_mode) == 0o600, "a file holding a live secret is private"
    assert stat.S_IMODE(Path(with_secret.backup).stat().st_mode) == 0o600


def test_include_secrets_writes_the_api_key_for_direct_entries(home, api_key_account):
    result = export_models("chatgpt", "opencode", include_secrets=True, print_only=True, home=home)
    block = json.loads(result.text)["provider"]["oauth-hub-chatgpt"]
    assert block["options"]["apiKey"] == API_KEY
    assert block["npm"] == "@ai-sdk/openai-compatible"


def test_via_serve_points_api_key_accounts_at_serve_too(home, api_key_account):
    result = export_models("chatgpt", "llm", via_serve=True, print_only=True, home=home)
    items = yaml.safe_load(result.text)
    assert {i["api_base"] for i in items} == {"http://127.0.0.1:4141/v1"}
    assert {i["api_key_name"] for i in items} == {"oauth-hub-serve"}


def test_a_file_that_does_not_parse_is_left_alone(home, api_key_account, tmp_path):
    target = tmp_path / "opencode.json"
    target.write_text('{"provider": { // a comment\n}}')
    with pytest.raises(OAuthHubError, match="not valid JSON"):
        export_models("chatgpt", "opencode", output=target, home=home)
    assert target.read_text() == '{"provider": { // a comment\n}}'
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("opencode")] == ["opencode.json"]


@pytest.mark.parametrize(("exporter", "name"), [("opencode", "opencode.json"), ("llm", "llm.yaml")])
def test_a_tool_file_nested_too_deeply_is_a_clear_error(home, api_key_account, tmp_path, exporter, name):
    target = tmp_path / name
    target.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(OAuthHubError, match="nests its entries too deeply"):
        export_models("chatgpt", exporter, output=target, home=home)
    assert target.read_text() == "[" * 100_000 + "]" * 100_000


def test_export_needs_model_entries(home, chatgpt_home, idp):
    seed_sign_in("chatgpt", idp.mint_tokens(), home=home)
    with pytest.raises(OAuthHubError, match="oauth-hub login chatgpt"):
        export_models("chatgpt", print_only=True, home=home)


# -- logout ----------------------------------------------------------------------------------------


def test_logout_removes_exported_entries_and_keeps_foreign_ones(home, api_key_account, tmp_path):
    puppy = tmp_path / "extra_models.json"
    puppy.write_text(json.dumps({"my-model": {"type": "custom_openai", "name": "x"}}))
    llm_file = tmp_path / "llm.yaml"
    llm_file.write_text(yaml.safe_dump([{"model_id": "mine", "model_name": "mine"}]))
    opencode_file = tmp_path / "opencode.json"
    export_models("chatgpt", output=puppy, home=home)
    export_models("chatgpt", "llm", output=llm_file, home=home)
    export_models("chatgpt", "opencode", output=opencode_file, home=home)
    assert len(exported("chatgpt", home=home)) == 3

    report = logout("chatgpt", home=home)

    assert json.loads(puppy.read_text()) == {"my-model": {"type": "custom_openai", "name": "x"}}
    assert yaml.safe_load(llm_file.read_text()) == [{"model_id": "mine", "model_name": "mine"}]
    assert json.loads(opencode_file.read_text()).get("provider") == {}
    assert {r["path"] for r in report["removed_exports"]} == {str(puppy), str(llm_file), str(opencode_file)}
    assert exported("chatgpt", home=home) == []
    assert logout("chatgpt", home=home)["removed_exports"] == []  # twice is harmless


def test_logout_leaves_no_copy_of_an_exported_secret(home, api_key_account, tmp_path):
    mine = {"provider": {"mine": {"options": {"apiKey": "my-own-key"}}}}
    live = tmp_path / "live" / "opencode.json"  # still holds the key at logout
    earlier = tmp_path / "earlier" / "opencode.json"  # held it once; a later export backed it up
    for target in (live, earlier):
        target.parent.mkdir()
        target.write_text(json.dumps(mine))
        export_models("chatgpt", "opencode", output=target, include_secrets=True, home=home)
        assert API_KEY in target.read_text()
    second = export_models("chatgpt", "opencode", output=earlier, home=home)
    assert API_KEY in Path(second.backup).read_text()

    report = logout("chatgpt", home=home)

    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.parent != home]
    assert not [p.name for p in files if API_KEY in p.read_text()]
    backups = [p for p in files if ".bak-" in p.name]
    assert backups and all("my-own-key" in p.read_text() for p in backups)  # the person's own entries stay
    assert any(f"No backup of {live} was kept" in note for note in report["notes"])
    assert any(f"out of the backup {second.backup}" in note for note in report["notes"])


def test_logout_keeps_its_backup_when_no_secret_was_exported(home, api_key_account, tmp_path):
    target = tmp_path / "extra_models.json"
    export_models("chatgpt", output=target, home=home)
    exported_text = target.read_text()
    (item,) = logout("chatgpt", home=home)["removed_exports"]
    assert Path(item["backup"]).read_text() == exported_text


def test_logout_leaves_an_entry_the_person_took_over(home, api_key_account, tmp_path):
    target = tmp_path / "extra_models.json"
    export_models("chatgpt", output=target, home=home)
    data = json.loads(target.read_text())
    data["chatgpt-gpt-4o"]["oauth_source"] = "mine now"
    target.write_text(json.dumps(data))
    logout("chatgpt", home=home)
    assert list(json.loads(target.read_text())) == ["chatgpt-gpt-4o"]


def test_logout_of_one_provider_keeps_the_other_providers_exports(home, api_key_account, claude_account, tmp_path):
    target = tmp_path / "extra_models.json"
    export_models("chatgpt", output=target, home=home)
    export_models("claude_code", output=target, home=home)
    logout("chatgpt", home=home)
    data = json.loads(target.read_text())
    assert data and all(name.startswith("claude-code-") for name in data)
    assert [r["provider"] for r in exported(home=home)] == ["claude_code"]


# -- plugins and the CLI -------------------------------------------------------------------------


class JsonTool:
    """A third-party exporter, as a package would register it under `oauth_hub.exporters`."""

    @hookimpl
    def exporter_info(self):
        return {"title": "Json tool", "format": "json", "apis": [API_CHAT]}

    @hookimpl
    def render(self, models, options):
        return {m.key: {"model": m.model, "url": m.base_url, "oauth_source": m.marker} for m in models}

    @hookimpl
    def merge(self, document, entries, marker):
        return merge_mapping(document, entries, marked(marker))

    @hookimpl
    def remove(self, document, keys, marker):
        return remove_mapping(document, keys, marked(marker))


def test_built_in_exporters_come_from_the_entry_point_group():
    assert {"code_puppy", "llm", "litellm", "aider", "opencode"} <= set(exporter_names())


def test_third_party_exporters_plug_in(home, api_key_account, tmp_path):
    register_exporter("json-tool", JsonTool())
    try:
        target = tmp_path / "tool.json"
        result = export_models("chatgpt", "json-tool", output=target, home=home)
        assert set(json.loads(target.read_text())) == set(result.keys)
        logout("chatgpt", home=home)
        assert json.loads(target.read_text()) == {}
    finally:
        unregister_exporter("json-tool")


def test_unknown_exporter_lists_the_known_ones():
    with pytest.raises(OAuthHubError, match=r"Unknown exporter 'nope'. Known exporters: .*code_puppy"):
        load_exporter("nope")


@pytest.fixture
def run_cli():
    from oauth_hub.cli import HubGroup
    from oauth_hub.cli_export import export, serve

    group = HubGroup(name="oauth-hub")
    group.add_command(export)
    group.add_command(serve)

    def run(*args):
        return CliRunner().invoke(group, list(args), catch_exceptions=False)

    return run


def test_cli_print_puts_the_file_on_stdout_and_words_on_stderr(run_cli, home, api_key_account):
    result = run_cli("export", "chatgpt", "--to", "aider", "--print")
    assert result.exit_code == 0, result.stderr
    assert set(json.loads(result.stdout)) == {f"openai/{m}" for m in stored_names(home, "chatgpt").values()}
    assert "nothing was written" in result.stderr and "aider --model" in result.stderr


def test_cli_writes_and_reports_as_json(run_cli, home, api_key_account, tmp_path):
    target = tmp_path / "litellm.yaml"
    result = run_cli("export", "chatgpt", "--to", "litellm", "--output", str(target), "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["written"] and summary["path"] == str(target) and summary["keys"]
    assert yaml.safe_load(target.read_text())["model_list"]


def test_cli_errors_are_one_line(run_cli, home, api_key_account):
    result = run_cli("export", "chatgpt", "--to", "litellm")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: LiteLLM has no standard configuration file")
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_lists_exporters_and_prints_the_stable_key(run_cli, home):
    listing = run_cli("export", "--list", "--json")
    assert {row["name"] for row in json.loads(listing.stdout)} >= {"code_puppy", "opencode"}
    key = run_cli("serve", "--print-key")
    assert key.exit_code == 0 and key.stdout.strip() == (home / "serve_key").read_text().strip()


def test_pyproject_registers_every_built_in_exporter():
    data = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    group = data["project"]["entry-points"]["oauth_hub.exporters"]
    assert set(group) == {"code_puppy", "llm", "litellm", "aider", "opencode"}
    assert any(d.lower().startswith("pyyaml") for d in data["project"]["dependencies"])


def test_a_direct_model_in_an_api_the_tool_lacks_goes_through_the_gateway(home, claude_home, anthropic):
    """A Console (API-key) Claude account speaks Messages; llm's YAML has no Messages API, so those
    entries go through serve's /v1 as Chat Completions instead of being skipped; aider keeps them direct."""
    key = anthropic.mint_api_key()
    seed_sign_in("claude_code", anthropic.mint_tokens(console=True), home=claude_home, api_key=key)
    seed_models("claude_code", claude_home)
    items = yaml.safe_load(export_models("claude_code", "llm", print_only=True, home=home).text)
    assert items and all(i["api_base"] == "http://127.0.0.1:4141/v1" and i["api_key_name"] == "oauth-hub-serve"
                         and i["model_name"].startswith("claude_code/") and "responses" not in i for i in items)
    direct = json.loads(export_models("claude_code", "aider", print_only=True, home=home).text)
    assert direct and all(name.startswith("anthropic/claude-") for name in direct)
