"""The exporter format axis: TOML built in (comments kept), other formats through the
parse/serialize hooks, and one hook marker for providers and exporters alike.

Exporters here are written the way a third-party package writes them, with public
names only, and registered in-process (``register_exporter``); the sign-in comes from
the fake IdP, as in tests/test_exporters.py.
"""

from __future__ import annotations

import configparser
import io
import json
import tomllib

import pytest

import oauth_core
from oauth_core.accounts import logout
from oauth_core.errors import CorruptFileError
from oauth_core.exporters import (
    API_CHAT,
    ExporterLoadError,
    export_models,
    load_exporter,
    marked,
    merge_mapping,
    register_exporter,
    remove_mapping,
    unregister_exporter,
)
from oauth_core.testing.seed import seed_sign_in

from .test_exporters import API_KEY, stored_names
from .test_serve import seed_models

TOOL_CONFIG = """\
# mytool configuration: hand-written, with comments that must survive
theme = "dark"  # the person's choice

[models.my-own]
# a model the person added
url = "http://localhost:9999/v1"
"""


@pytest.fixture
def signed_in(chatgpt_home, idp):
    """A ChatGPT account with an API key and its model entries, as a login leaves them."""
    idp.issued_api_keys.add(API_KEY)
    seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, api_key=API_KEY)
    seed_models("chatgpt", chatgpt_home)


class TomlTool:
    """A tool whose config is TOML with one ``[models.NAME]`` table per model."""

    @oauth_core.hookimpl  # the top-level marker: the same object as oauth_core.exporters.hookimpl
    def exporter_info(self):
        return {"title": "My Tool", "format": "toml", "apis": [API_CHAT]}

    @oauth_core.hookimpl
    def render(self, models, options):
        return {m.key: {"model": m.model, "url": m.base_url, "key_env": m.secret_env, "oauth_source": m.marker}
                for m in models}

    @oauth_core.hookimpl
    def merge(self, document, entries, marker):
        document = document if document is not None else {}
        document["models"], conflicts = merge_mapping(document.get("models"), entries, marked(marker), "[models]")
        return document, conflicts

    @oauth_core.hookimpl
    def remove(self, document, keys, marker):
        document["models"], removed = remove_mapping(document.get("models"), keys, marked(marker), "[models]")
        return document, removed


@pytest.fixture
def toml_tool():
    register_exporter("mytool", TomlTool())
    yield
    unregister_exporter("mytool")


def test_toml_export_keeps_comments_and_the_persons_entries(home, signed_in, toml_tool, tmp_path):
    target = tmp_path / "mytool.toml"
    target.write_text(TOOL_CONFIG)
    result = export_models("chatgpt", "mytool", output=target, home=home)

    text = target.read_text()
    data = tomllib.loads(text)  # the tool's own parser reads it
    ours = {k: v for k, v in data["models"].items() if v.get("oauth_source") == "chatgpt-oauth-plugin"}
    assert set(ours) == set(result.keys) == set(stored_names(home, "chatgpt"))
    assert all(entry["key_env"] == "CHATGPT_OAUTH_API_KEY" for entry in ours.values())
    assert data["models"]["my-own"] == {"url": "http://localhost:9999/v1"} and data["theme"] == "dark"
    for comment in ("# mytool configuration", "# the person's choice", "# a model the person added"):
        assert comment in text
    assert API_KEY not in text
    assert not result.notes  # nothing about lost comments: TOML keeps them

    logout("chatgpt", home=home)
    after = target.read_text()
    assert tomllib.loads(after)["models"] == {"my-own": {"url": "http://localhost:9999/v1"}}
    assert "# a model the person added" in after and "# the person's choice" in after


def test_toml_export_into_a_new_file(home, signed_in, toml_tool, tmp_path):
    target = tmp_path / "new" / "mytool.toml"
    result = export_models("chatgpt", "mytool", output=target, home=home)
    assert set(tomllib.loads(target.read_text())["models"]) == set(result.keys)


def test_a_toml_file_that_does_not_parse_is_left_alone(home, signed_in, toml_tool, tmp_path):
    target = tmp_path / "mytool.toml"
    target.write_text("theme = = 'dark'\n")
    with pytest.raises(CorruptFileError, match=r"is not valid TOML \(line 1\); it was left untouched"):
        export_models("chatgpt", "mytool", output=target, home=home)
    assert target.read_text() == "theme = = 'dark'\n"


class IniTool:
    """A format that is not built in: the exporter parses and writes its files itself."""

    @oauth_core.hookimpl
    def exporter_info(self):
        return {"title": "Ini Tool", "format": "ini", "apis": [API_CHAT]}

    @oauth_core.hookimpl
    def parse(self, text):
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(text)
        return {section: dict(parser[section]) for section in parser.sections()}

    @oauth_core.hookimpl
    def serialize(self, document):
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_dict(document)
        buffer = io.StringIO()
        parser.write(buffer)
        return buffer.getvalue()

    @oauth_core.hookimpl
    def render(self, models, options):
        return {f"model {m.key}": {"url": m.base_url, "oauth_source": m.marker} for m in models}

    @oauth_core.hookimpl
    def merge(self, document, entries, marker):
        return merge_mapping(document, entries, marked(marker))

    @oauth_core.hookimpl
    def remove(self, document, keys, marker):
        return remove_mapping(document, keys, marked(marker))


def test_a_format_of_the_exporters_own_through_the_parse_and_serialize_hooks(home, signed_in, tmp_path):
    register_exporter("initool", IniTool())
    try:
        target = tmp_path / "tool.ini"
        target.write_text("[general]\ncolour = blue\n")
        result = export_models("chatgpt", "initool", output=target, home=home)
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(target.read_text())
        assert parser["general"]["colour"] == "blue"
        assert {s.removeprefix("model ") for s in parser.sections() if s != "general"} == set(
            stored_names(home, "chatgpt")) == {k.removeprefix("model ") for k in result.keys}
        assert load_exporter("initool").format == "ini"

        logout("chatgpt", home=home)
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(target.read_text())
        assert parser.sections() == ["general"]
    finally:
        unregister_exporter("initool")


class BrokenIni(IniTool):
    @oauth_core.hookimpl
    def parse(self, text):
        raise ValueError("not ini")


def test_a_parse_hook_that_refuses_the_file_leaves_it_alone(home, signed_in, tmp_path):
    register_exporter("brokenini", BrokenIni())
    try:
        target = tmp_path / "tool.ini"
        target.write_text("[general\n")
        with pytest.raises(CorruptFileError, match="is not valid INI; it was left untouched"):
            export_models("chatgpt", "brokenini", output=target, home=home)
        assert target.read_text() == "[general\n"
    finally:
        unregister_exporter("brokenini")


def test_a_format_that_is_not_built_in_needs_the_hooks():
    class NoParser:
        @oauth_core.hookimpl
        def exporter_info(self):
            return {"title": "X", "format": "ini", "apis": [API_CHAT]}

        render = IniTool.render
        merge = IniTool.merge
        remove = IniTool.remove

    register_exporter("noparser", NoParser())
    try:
        with pytest.raises(ExporterLoadError, match=r"format 'ini'.*json, yaml, toml.*parse and serialize hooks"):
            load_exporter("noparser")
    finally:
        unregister_exporter("noparser")


def test_the_exporter_and_provider_markers_are_one():
    from oauth_core import exporters, hookspecs

    assert oauth_core.hookimpl is exporters.hookimpl is hookspecs.hookimpl


def test_unmarked_hook_functions_are_named_in_the_error():
    class Unmarked:
        def exporter_info(self):
            return {"title": "X", "format": "json", "apis": [API_CHAT]}

        def render(self, models, options):
            return {}

        def merge(self, document, entries, marker):
            return document, []

        def remove(self, document, keys, marker):
            return document, []

    register_exporter("unmarked", Unmarked())
    try:
        with pytest.raises(ExporterLoadError) as caught:
            load_exporter("unmarked")
        message = str(caught.value)
        assert "does not implement exporter_info, render, merge, remove" in message
        assert "It has exporter_info, merge, remove, render, but not marked as hooks" in message
        assert "@hookimpl" in message
    finally:
        unregister_exporter("unmarked")


def test_an_unmarked_provider_is_named_too(home):
    from oauth_core.errors import ProviderLoadError
    from oauth_core.plugins import register_provider, unregister_provider
    from oauth_core.provider import Provider
    from oauth_core.store import Store

    class Unmarked:
        def provider_defaults(self):
            return {"port": 0}

    register_provider("unmarked", Unmarked())
    try:
        with pytest.raises(ProviderLoadError, match=r"has provider_defaults but none is marked as a hook.*@hookimpl"):
            Provider.load("unmarked", Store(home))
    finally:
        unregister_provider("unmarked")


def test_export_print_in_toml_shows_the_file(home, signed_in, toml_tool, tmp_path):
    target = tmp_path / "mytool.toml"
    target.write_text(TOOL_CONFIG)
    result = export_models("chatgpt", "mytool", output=target, home=home, print_only=True)
    assert target.read_text() == TOOL_CONFIG  # nothing written
    assert set(tomllib.loads(result.text)["models"]) == {"my-own", *result.keys}
    assert json.dumps(result.to_json())  # the summary has no tomlkit objects in it
