"""One plugin-loading rule, applied by every command to providers and exporters alike.

Third-party packages are real installed distributions (a ``.dist-info`` with
``entry_points.txt`` on ``PYTHONPATH``) and every check runs the real ``oauth-hub``
command in a subprocess.
"""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

WIDGET_PROVIDER = """
from oauth_core import hookimpl

@hookimpl
def provider_defaults():
    return {"port": 0, "title": "Widget", "description": "Widget Cloud"}

@hookimpl
def environment(credentials):
    return {"WIDGET_TOKEN": credentials.access_token or ""}
"""

WIDGET_EXPORTER = """
from oauth_core.exporters import API_CHAT, hookimpl, marked, merge_mapping, remove_mapping

@hookimpl
def exporter_info():
    return {"title": "Widget tool", "format": "json", "apis": [API_CHAT]}

@hookimpl
def render(models, options):
    return {m.key: {"url": m.base_url, "oauth_source": m.marker} for m in models}

@hookimpl
def merge(document, entries, marker):
    return merge_mapping(document, entries, marked(marker))

@hookimpl
def remove(document, keys, marker):
    return remove_mapping(document, keys, marked(marker))
"""

WIDGET_TOKEN = "widget-access-token-0123456789"


def make_dist(site: Path, dist: str, groups: dict[str, dict[str, str]], modules: dict[str, str]) -> None:
    """An installed distribution: entry points in several groups, plus its modules."""
    info = site / f"{dist.replace('-', '_')}-2.0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 2.0.0\n")
    text = "".join(f"[{group}]\n" + "".join(f"{n} = {v}\n" for n, v in eps.items()) + "\n"
                   for group, eps in groups.items())
    (info / "entry_points.txt").write_text(text)
    for name, source in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def widget(cli, tmp_path, home):
    """oauth-hub-widget: a provider `widget` and an exporter `widgettool`; signed in to widget."""
    site = tmp_path / "site"
    make_dist(site, "oauth-hub-widget",
              {"oauth_hub.providers": {"widget": "widget_provider"},
               "oauth_hub.exporters": {"widgettool": "widget_exporter"}},
              {"widget_provider": WIDGET_PROVIDER, "widget_exporter": WIDGET_EXPORTER})
    cli.env["PYTHONPATH"] = str(site)
    home.mkdir(mode=0o700, exist_ok=True)
    tokens = home / "widget_oauth.json"
    tokens.write_text(json.dumps({"access_token": WIDGET_TOKEN, "expires_at": time.time() + 3600,
                                  "last_refresh": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))
    tokens.chmod(0o600)
    models = home / "widget_models.json"
    models.write_text(json.dumps({"widget-small": {"type": "openai", "name": "small", "oauth_source":
                                                   "oauth-hub:widget", "custom_endpoint": {
                                                       "url": "https://api.widget.example/v1",
                                                       "api_key": "$WIDGET_TOKEN"}}}))
    models.chmod(0o600)
    return site


def answers(cli, value: str | None) -> dict[str, object]:
    """What each command says about widget (and the widgettool exporter) under one load list."""
    env = {} if value is None else {"OAUTH_HUB_LOAD_PLUGINS": value}
    providers = cli("providers", "--json", env=env)
    status = cli("status", "--json", env=env)
    exporters = cli("export", "--list", "--json", env=env)
    return {
        "providers": "widget" in {r["name"] for r in providers.json},
        "status": "widget" in {r["provider"] for r in status.json},
        "status widget": cli("status", "widget", "--json", env=env).returncode == 0,
        "token": cli("token", "widget", env=env).stdout.strip() == WIDGET_TOKEN,
        "env": f"WIDGET_TOKEN={WIDGET_TOKEN}" in cli("env", "widget", env=env).stdout,
        "export": cli("export", "widget", "--to", "widgettool", "--print", env=env).returncode == 0,
        "export --list": "widgettool" in {r["name"] for r in exporters.json},
    }


def test_the_load_list_gives_one_answer_in_every_command(cli, widget):
    everything = {"providers": True, "status": True, "status widget": True, "token": True, "env": True,
                  "export": True, "export --list": True}
    assert answers(cli, None) == everything
    assert answers(cli, "") == dict.fromkeys(everything, False)  # built-ins only
    assert answers(cli, "oauth-hub-widget") == everything  # a distribution name: all it registers
    assert answers(cli, "OAuth_Hub.Widget") == everything  # normalised as pip does
    # An entry-point name loads that plugin only: the provider, not the package's exporter.
    assert answers(cli, "widget") == dict(everything, **{"export": False, "export --list": False})


def test_a_left_out_plugin_is_refused_with_the_reason(cli, widget):
    env = {"OAUTH_HUB_LOAD_PLUGINS": "something-else"}
    token = cli("token", "widget", env=env)
    assert token.returncode == 1 and token.stdout == ""
    assert "The provider 'widget' is installed but not loaded: OAUTH_HUB_LOAD_PLUGINS='something-else'" \
        in token.stderr
    export = cli("export", "widget", "--to", "widgettool", "--print", env=env)
    assert export.returncode == 1 and "installed but not loaded" in export.stderr
    listing = cli("providers", env=env)
    assert listing.returncode == 0 and "OAUTH_HUB_LOAD_PLUGINS leaves out widget" in listing.stderr


def test_names_that_match_nothing_are_warned_about_once(cli, widget):
    result = cli("providers", "--json", env={"OAUTH_HUB_LOAD_PLUGINS": "widget,widgte,oauth-hub-gadget"})
    assert result.returncode == 0
    notes = [line for line in result.stderr.splitlines() if "matches no installed plugin" in line]
    assert notes == ["Note: OAUTH_HUB_LOAD_PLUGINS names oauth-hub-gadget, widgte, which matches no installed "
                     "plugin or package (`oauth-hub providers` and `oauth-hub export --list` show what is "
                     "installed)."]
    assert "widget" in {r["name"] for r in result.json}
    quiet = cli("providers", "--json", env={"OAUTH_HUB_LOAD_PLUGINS": "widget,widgettool,chatgpt"})
    assert "matches no installed plugin" not in quiet.stderr


def test_bad_names_and_ports_fail_at_load_time_not_at_login(cli, tmp_path):
    site = tmp_path / "site"
    make_dist(site, "oauth-hub-odd",
              {"oauth_hub.providers": {"Bad.Name": "odd_good", "noport": "odd_noport", "badport": "odd_badport"},
               "oauth_hub.exporters": {"Bad.Tool": "widget_exporter"}},
              {"odd_good": WIDGET_PROVIDER, "widget_exporter": WIDGET_EXPORTER,
               "odd_noport": "from oauth_core import hookimpl\n\n@hookimpl\ndef provider_defaults():\n"
                             "    return {'title': 'No port'}\n",
               "odd_badport": "from oauth_core import hookimpl\n\n@hookimpl\ndef provider_defaults():\n"
                              "    return {'port': 70000}\n"})
    cli.env["PYTHONPATH"] = str(site)
    result = cli("providers", "--json")
    rows = {r["name"]: r for r in result.json}
    assert rows["Bad.Name"]["status"] == "failed" and "not a valid provider name" in rows["Bad.Name"]["error"]
    assert rows["noport"]["status"] == "failed" and "declares no callback port" in rows["noport"]["error"]
    assert rows["badport"]["status"] == "failed" and "70000 is not a port number" in rows["badport"]["error"]
    assert rows["chatgpt"]["status"] == "loaded"
    human = cli("providers")
    assert human.returncode == 1 and "noport" in human.stdout and "FAILED" in human.stdout
    tools = {r["name"]: r for r in cli("export", "--list", "--json").json}
    assert "not a valid exporter name" in tools["Bad.Tool"]["error"]


def test_a_clashing_name_is_a_note_for_exporters_too(cli, tmp_path):
    site = tmp_path / "site"
    make_dist(site, "oauth-hub-copycat", {"oauth_hub.exporters": {"llm": "copycat_exporter"}},
              {"copycat_exporter": "raise SystemExit('the copycat was imported')\n"})
    cli.env["PYTHONPATH"] = str(site)
    rows = [r for r in cli("export", "--list", "--json").json if r["name"] == "llm"]
    assert [r["error"] for r in rows] == [None, None]
    assert [r["note"] for r in rows] == [None, "not used: the built-in exporter of that name wins"]
    assert rows[0]["title"] == "llm"  # the built-in was loaded, the copycat never imported
    human = cli("export", "--list")
    assert human.returncode == 0 and "failed" not in human.stderr
    assert "llm          note: copycat_exporter (oauth-hub-copycat) is not used: the built-in exporter" in human.stderr


def test_providers_lists_capabilities(cli):
    result = cli("providers", "--json")
    rows = {r["name"]: r for r in result.json}
    chatgpt = rows["chatgpt"]
    assert {"browser login", "device login", "refresh", "revocation", "API key", "models", "gateway"} <= set(
        chatgpt["capabilities"])
    assert "start_device_login" in chatgpt["hooks"] and "poll_device_login" in chatgpt["hooks"]
    assert "device login" not in rows["claude_code"]["capabilities"]
    assert "sign-in variants" in rows["claude_code"]["capabilities"]
    assert "sign-in variants" not in chatgpt["capabilities"]
    assert "start_device_login" not in rows["claude_code"]["hooks"]
    human = cli("providers").stdout
    assert "can: browser login, device login, refresh" in human


def test_providers_imports_nothing_it_does_not_need(cli):
    """Provider modules are imported to check them; the HTTP, JWT, YAML and exporter stacks are not."""
    import subprocess
    import sys

    code = ("import sys, json; from oauth_hub.cli import main; sys.argv = ['oauth-hub', 'providers', '--json']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'requests', 'urllib3', 'jwt', 'cryptography', 'yaml', 'tomlkit', 'httpx', 'httpx2'} "
            "or m.startswith(('oauth_hub.exporters', 'oauth_core.exporters', 'oauth_core.http', "
            "'oauth_core.login', 'oauth_core.serve')))\n"
            "print(json.dumps(heavy), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], env=cli.env, capture_output=True, text=True, timeout=60)
    assert json.loads(result.stderr.strip().splitlines()[-1]) == [], result.stderr


def test_trace_logs_hook_calls_in_order_and_no_secret(cli, chatgpt_home, idp):
    result = cli("login", "chatgpt", env={"OAUTH_HUB_TRACE_PLUGINS": "1"})
    assert result.returncode == 0, result.stderr
    trace = [line for line in result.stderr.splitlines() if line.startswith("oauth-hub trace: provider chatgpt: ")]
    called = [line.split(": ", 2)[2].split("(", 1)[0] for line in trace]
    login = ["build_auth_url", "exchange_code", "describe_account", "obtain_api_key", "list_models", "model_entry"]
    positions = [called.index(hook) for hook in login]
    assert positions == sorted(positions), called
    exchange = next(line for line in trace if ": exchange_code(" in line)
    assert "exchange_code(settings, http, code, redirect_uri, code_verifier, state) -> dict{access_token, " in exchange
    stored = json.loads((chatgpt_home / "chatgpt_oauth.json").read_text())
    for secret in (stored["access_token"], stored["refresh_token"], stored["id_token"], stored["api_key"]):
        assert secret[:16] not in result.stderr
    quiet = cli("status", "--json")
    assert "oauth-hub trace:" not in quiet.stderr  # off unless asked for


def test_trace_covers_exporters(cli, widget):
    result = cli("export", "widget", "--to", "widgettool", "--print", env={"OAUTH_HUB_TRACE_PLUGINS": "1"})
    assert result.returncode == 0, result.stderr
    assert "oauth-hub trace: exporter widgettool: render(models, options) -> dict{widget-small}" in result.stderr
    assert WIDGET_TOKEN not in result.stderr


def test_a_provider_without_gateway_hooks_is_not_listed_as_a_gateway(cli, widget):
    rows = {r["name"]: r for r in cli("providers", "--json").json}
    assert rows["widget"]["hooks"] == ["environment", "provider_defaults"]
    assert rows["widget"]["capabilities"] == ["environment"]
    assert "can: environment" in cli("providers").stdout
