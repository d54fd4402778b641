"""Token records in the OS credential store (``storage = "keyring"`` in ``config.toml``).

With ``storage = "file"`` (the default) a sign-in lives in ``<record>_oauth.json``, mode
0600. With ``"keyring"`` the whole record goes to the OS keyring through the
`keyring <https://pypi.org/project/keyring/>`_ package (macOS Keychain, Windows
Credential Manager, the Secret Service on Linux), and the home keeps a *stub* in its
place: the same file name, no secret in it, only where the record is and what
``status`` may show without unlocking anything::

    {"storage": "keyring", "keyring": {"service": "oauth-hub", "username": "chatgpt@work#3f2a…"},
     "account": {"email": …, "plan": …}, "expires_at": …, "last_refresh": …}

The stub is rewritten with every change of the record, so a reader's cache (keyed by
the file's ``stat``) still notices a refresh made by another process, and the refresh
lock stays a file beside it: a keyring has no cross-process lock. ``"auto"`` uses the
keyring when a real OS backend is available (priority 1 or more: not a plain-text or
"fail" backend) and files otherwise, as the Codex CLI's
``cli_auth_credentials_store = auto`` does.

``keyring`` is imported only here, and this module only when a stub is read or the
setting asks for a keyring: ``get_token()`` on a file-stored sign-in never loads it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .errors import OAuthHubError

SERVICE = "oauth-hub"
STORAGE_KEY = "storage"
STORAGE_CHOICES = ("file", "keyring", "auto")
DEFAULT_STORAGE = "file"
STUB_MARKER = "keyring"  # the value of "storage" in a stub
KEYRING_LOCK = "keyring.lock"  # serialises writes: a file-based keyring backend rewrites one shared file


class KeyringError(OAuthHubError):
    """The keyring cannot be used (no backend, locked, refused)."""


def _keyring() -> Any:
    try:
        import keyring
    except ImportError:  # pragma: no cover - keyring is a dependency
        raise KeyringError("The keyring package is not installed: `pip install keyring`, or set "
                           "`oauth-hub config set storage file`.") from None
    return keyring


def backend() -> Any:
    """The keyring backend in use (``PYTHON_KEYRING_BACKEND`` selects one)."""
    return _keyring().get_keyring()


def describe_backend(found: Any | None = None) -> str:
    """``keyrings.alt.file.PlaintextKeyring (priority 0.5)``: what ``doctor`` shows."""
    found = found if found is not None else backend()
    kind = type(found)
    priority = getattr(found, "priority", None)
    try:
        shown = f"{float(priority):g}"
    except (TypeError, ValueError):
        shown = "?"
    return f"{kind.__module__}.{kind.__qualname__} (priority {shown})"


def is_real_backend(found: Any) -> bool:
    """A backend that can hold secrets at all (not keyring's "fail" or "null" stand-ins)."""
    module = type(found).__module__
    return not (module.endswith("backends.fail") or module.endswith("backends.null"))


def is_os_backend(found: Any) -> bool:
    """An OS credential store, for ``auto``: keyring's own backends rank 1 or more, plain-text files below."""
    try:
        return is_real_backend(found) and float(getattr(found, "priority", 0)) >= 1
    except (TypeError, ValueError):
        return False


def configured(config_data: dict[str, Any], path: Path) -> str:
    """The ``storage`` setting of a parsed ``config.toml`` (``file`` when absent)."""
    value = config_data.get(STORAGE_KEY, DEFAULT_STORAGE)
    if value not in STORAGE_CHOICES:
        from .errors import ConfigError

        raise ConfigError(f"{path}: storage must be one of {', '.join(STORAGE_CHOICES)}, not {value!r}. "
                          "Fix it with `oauth-hub config set storage file`.")
    return str(value)


def resolve(setting: str) -> str:
    """``file`` or ``keyring``: what ``setting`` means on this machine now.

    ``keyring`` with no usable backend is an error (a record must not silently land in
    a file when the person asked for it not to); ``auto`` falls back to files.
    """
    if setting == "file":
        return "file"
    try:
        found = backend()
    except KeyringError:
        if setting == "auto":
            return "file"
        raise
    if setting == "auto":
        return "keyring" if is_os_backend(found) else "file"
    if not is_real_backend(found):
        raise KeyringError(
            "storage is set to keyring, but no keyring backend is available here (" + describe_backend(found)
            + "). Unlock or install one (see `oauth-hub doctor`), or run `oauth-hub config set storage file`."
        )
    if not is_os_backend(found) and not chosen_on_purpose():
        raise KeyringError(
            "storage is set to keyring, but the only keyring backend here is " + describe_backend(found)
            + ", which is not an OS credential store (it keeps secrets in a file of its own). To use it anyway, "
            "choose it by name: PYTHON_KEYRING_BACKEND=" + type(found).__module__ + "." + type(found).__qualname__
            + " (or keyring's keyringrc.cfg); else run `oauth-hub config set storage file`."
        )
    return "keyring"


def chosen_on_purpose() -> bool:
    """Whether the person named the backend (``PYTHON_KEYRING_BACKEND`` or keyring's config file).

    keyring otherwise picks the highest-ranked backend installed, and a package that
    happens to be installed (keyrings.alt) must not quietly stand in for the OS store.
    """
    if os.environ.get("PYTHON_KEYRING_BACKEND"):
        return True
    try:
        from keyring.core import load_config
    except ImportError:  # pragma: no cover - keyring is a dependency
        return False
    try:
        return load_config() is not None
    except Exception:  # a broken keyringrc.cfg: keyring reports it itself when used
        return False


def entry_username(home: Path, record: str) -> str:
    """The keyring entry of ``record`` in ``home``: unique per home, so two homes never share one."""
    digest = hashlib.sha256(os.path.realpath(home).encode("utf-8")).hexdigest()[:16]
    return f"{record}#{digest}"


def is_stub(data: Any) -> bool:
    return isinstance(data, dict) and data.get("storage") == STUB_MARKER


def stub_for(record_json: dict[str, Any], service: str, username: str) -> dict[str, Any]:
    """The non-secret stub that stands in the home for a record kept in the keyring."""
    stub: dict[str, Any] = {"storage": STUB_MARKER, "keyring": {"service": service, "username": username}}
    for key in ("provider", "account", "expires_at", "last_refresh", "api_key_obtained_at"):
        if key in record_json:
            stub[key] = record_json[key]
    stub["has_api_key"] = bool(record_json.get("api_key"))
    return stub


def stub_entry(stub: dict[str, Any], path: Path) -> tuple[str, str]:
    where = stub.get("keyring")
    if not isinstance(where, dict) or not isinstance(where.get("service"), str) \
            or not isinstance(where.get("username"), str):
        from .errors import CorruptFileError

        raise CorruptFileError(f"{path} names no keyring entry; it was left untouched. Remove it and log in again.")
    return where["service"], where["username"]


def read_record(service: str, username: str, path: Path, hint: str) -> dict[str, Any]:
    """The record a stub points to, parsed; a clear error when the keyring does not have it."""
    try:
        secret = _keyring().get_password(service, username)
    except Exception as exc:  # keyring backends raise their own error types
        raise KeyringError(f"Could not read the sign-in from the keyring ({type(exc).__name__}: {exc}). "
                           "Unlock the keyring and try again.") from None
    if secret is None:
        raise KeyringError(f"The keyring has no sign-in for {path.name} (entry {username!r} of {service!r} is "
                           f"gone). Run `oauth-hub login {hint}` again.")
    try:
        data = json.loads(secret)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        from .errors import CorruptFileError

        raise CorruptFileError(f"The keyring entry {username!r} of {service!r} is not a sign-in record; it was "
                               f"left untouched. Run `oauth-hub login {hint}` again.")
    return data


def write_record(service: str, username: str, record_json: dict[str, Any]) -> None:
    try:
        _keyring().set_password(service, username, json.dumps(record_json, separators=(",", ":"), sort_keys=True))
    except Exception as exc:
        raise KeyringError(f"Could not write the sign-in to the keyring ({type(exc).__name__}: {exc}); nothing "
                           "was changed. Unlock the keyring, or run `oauth-hub config set storage file`.") from None


def delete_record(service: str, username: str) -> bool:
    """Remove an entry; ``False`` when there was none (or the backend refused)."""
    keyring = _keyring()
    try:
        keyring.delete_password(service, username)
    except Exception:  # PasswordDeleteError when absent; nothing else to do either way
        return False
    return True
