"""``storage = "keyring"``: token records in a real keyring backend, none in the home.

The backend is keyrings.alt's file-based ``PlaintextKeyring``, chosen the way a person
chooses one (``PYTHON_KEYRING_BACKEND``), with its file outside the home
(``XDG_DATA_HOME``): a real backend through the real ``keyring`` API, never a mock. Every
command runs in its own process, as keyring picks its backend once per process.
"""

from __future__ import annotations

import configparser
import json
import sys

import pytest

BACKEND = "keyrings.alt.file.PlaintextKeyring"


@pytest.fixture
def keyring_env(cli, tmp_path):
    data = tmp_path / "keyring-data"
    cli.env.update(PYTHON_KEYRING_BACKEND=BACKEND, XDG_DATA_HOME=str(data))
    return data / "python_keyring" / "keyring_pass.cfg"


def keyring_records(path) -> dict[str, dict]:
    """Every record in the keyring file, by entry (keyrings.alt keeps base64 values in an INI file)."""
    import base64

    parser = configparser.RawConfigParser()
    parser.read(path)
    found = {}
    for section in parser.sections():
        for option in parser.options(section):
            found[f"{section}:{option}"] = json.loads(base64.b64decode(parser.get(section, option)).decode())
    return found


def secrets_of(records) -> set[str]:
    return {record[f] for record in records.values()
            for f in ("access_token", "refresh_token", "id_token", "api_key") if record.get(f)}


def files_holding(home, secrets: set[str]) -> list[str]:
    """Files of the home (all of them, recursively) holding any secret or a 16-character piece of one."""
    pieces = {s[i:i + 16] for s in secrets for i in range(0, len(s) - 16, 16)} | secrets
    found = []
    for path in home.rglob("*"):
        if path.is_file():
            content = path.read_bytes().decode("utf-8", "replace")
            if any(piece in content for piece in pieces):
                found.append(path.name)
    return found


def test_keyring_storage_keeps_no_token_in_any_file_of_the_home(cli, chatgpt_home, idp, keyring_env):
    assert cli("config", "set", "storage", "keyring").returncode == 0
    for args in (("login", "chatgpt"), ("login", "chatgpt", "--account", "work")):
        result = cli(*args)
        assert result.returncode == 0, result.stderr
    refreshed = cli("refresh", "chatgpt", "--account", "work")
    assert refreshed.returncode == 0, refreshed.stderr

    records = keyring_records(keyring_env)
    assert len(records) == 2
    secrets = secrets_of(records)
    printed = {cli("token", "chatgpt").stdout.strip(), cli("token", "chatgpt", "--account", "work").stdout.strip(),
               cli("token", "chatgpt", "--api-key").stdout.strip()}
    assert printed <= secrets and len(printed) == 3  # what the tools get comes from the keyring
    assert idp.count("/oauth/token", "refresh_token") == 1
    assert files_holding(chatgpt_home, secrets) == []
    stub = json.loads((chatgpt_home / "chatgpt@work_oauth.json").read_text())
    assert stub["storage"] == "keyring" and stub["account"]["email"] == idp.email
    assert "access_token" not in stub and "refresh_token" not in stub

    # status and the embedding API read through the stub; doctor names the backend.
    status = cli("status", "chatgpt", "--json").json
    assert [(r["account"], r["storage"], r["logged_in"]) for r in status] == [
        ("main", "keyring", True), ("work", "keyring", True)]
    doctor = [c for c in cli("doctor", "--json").json if c["name"] == "storage"]
    assert doctor and doctor[0]["status"] == "ok" and BACKEND in doctor[0]["summary"], doctor

    # logout deletes the keyring entry too.
    assert cli("logout", "chatgpt", "--account", "work").returncode == 0
    assert len(keyring_records(keyring_env)) == 1


def test_changing_the_storage_moves_existing_sign_ins(cli, chatgpt_home, idp, keyring_env):
    assert cli("login", "chatgpt").returncode == 0
    before = json.loads((chatgpt_home / "chatgpt_oauth.json").read_text())
    moved = cli("config", "set", "storage", "keyring")
    assert moved.returncode == 0, moved.stderr
    assert "moved chatgpt from the file to the keyring" in moved.stderr
    assert files_holding(chatgpt_home, {before["access_token"], before["refresh_token"], before["api_key"]}) == []
    assert cli("token", "chatgpt").stdout.strip() == before["access_token"]

    back = cli("config", "set", "storage", "file")
    assert back.returncode == 0, back.stderr
    assert json.loads((chatgpt_home / "chatgpt_oauth.json").read_text())["refresh_token"] == before["refresh_token"]
    assert keyring_records(keyring_env) == {}  # nothing left behind in the keyring either


def test_keyring_storage_without_a_backend_is_refused_and_nothing_moves(cli, chatgpt_home, idp, tmp_path):
    assert cli("login", "chatgpt").returncode == 0
    before = (chatgpt_home / "chatgpt_oauth.json").read_bytes()
    cli.env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    refused = cli("config", "set", "storage", "keyring")
    assert refused.returncode == 1 and "no keyring backend is available" in refused.stderr
    assert (chatgpt_home / "chatgpt_oauth.json").read_bytes() == before
    # auto falls back to files where there is no OS keyring.
    assert cli("config", "set", "storage", "auto").returncode == 0
    assert (chatgpt_home / "chatgpt_oauth.json").read_bytes() == before


def test_a_plain_text_backend_is_not_taken_for_the_os_keyring_unless_chosen(cli, chatgpt_home, idp, tmp_path):
    """keyrings.alt is installed (a test dependency), no OS keyring is reachable and nobody named a
    backend: keyring would pick the plain-text file store, so `storage = keyring` is refused."""
    assert cli("login", "chatgpt").returncode == 0
    before = (chatgpt_home / "chatgpt_oauth.json").read_bytes()
    cli.env.pop("PYTHON_KEYRING_BACKEND", None)
    cli.env.update(XDG_CONFIG_HOME=str(tmp_path / "no-keyringrc"), XDG_DATA_HOME=str(tmp_path / "data"),
                   DBUS_SESSION_BUS_ADDRESS="unix:path=/nonexistent")
    refused = cli("config", "set", "storage", "keyring")
    assert refused.returncode == 1, refused.stdout
    assert "not an OS credential store" in refused.stderr and f"PYTHON_KEYRING_BACKEND={BACKEND}" in refused.stderr
    assert (chatgpt_home / "chatgpt_oauth.json").read_bytes() == before
    assert not (tmp_path / "data").exists()  # nothing went to the plain-text store
    # Named on purpose, the same backend is used.
    cli.env["PYTHON_KEYRING_BACKEND"] = BACKEND
    assert cli("config", "set", "storage", "keyring").returncode == 0
    assert "access_token" not in (chatgpt_home / "chatgpt_oauth.json").read_text()


PROBE = """
import sys
from oauth_core import get_token
get_token("chatgpt")
print("keyring" in sys.modules)
"""


def test_the_file_path_never_imports_keyring(cli, chatgpt_home, idp, keyring_env):
    import subprocess

    assert cli("login", "chatgpt").returncode == 0

    def probe() -> str:
        return subprocess.run([sys.executable, "-c", PROBE], env=cli.env, capture_output=True, text=True,
                              timeout=60).stdout.strip()

    assert probe() == "False"
    assert cli("config", "set", "storage", "keyring").returncode == 0
    assert probe() == "True"
