"""Where oauth-hub keeps its files, and how it writes them safely.

Token files hold live credentials, so every write is atomic and private from the first
byte: a temp file created with mode 0600 in the same directory, written, fsynced, then
``os.replace``d over the target. A reader (another agent tool) therefore sees either the
old file or the new one, never half of one, and never a moment where the file is
world-readable. The home itself is kept at 0700.

A file that exists but cannot be parsed is reported with its path and left untouched:
silently replacing it could destroy the only copy of a refresh token.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import CorruptFileError, OAuthHubError, notify

APP_NAME = "oauth-hub"
HOME_ENV = "OAUTH_HUB_HOME"
ACCOUNT_ENV = "OAUTH_HUB_ACCOUNT"  # the account a command (or get_token) uses when none is named
MAIN_ACCOUNT = "main"  # the account a sign-in made before accounts existed became, and the first one's name
ACCOUNT_SEP = "@"  # provider@account: record names (files), gateway routes; never in a provider name
ACCOUNT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
INDEX_FILE = "accounts.json"
RECORD_SUFFIX = "_oauth.json"


def platform_app_dir(app_name: str = APP_NAME) -> Path:
    """The per-user config directory, the same one ``click.get_app_dir(app_name)`` gives.

    Written out here so that the engine does not depend on the CLI framework; a test
    checks that both agree.
    """
    if sys.platform.startswith("win"):
        base = os.environ.get("APPDATA") or os.path.expanduser("~")
        return Path(base) / app_name
    if sys.platform == "darwin":
        return Path(os.path.expanduser("~/Library/Application Support")) / app_name
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(base) / app_name.lower().replace(" ", "-")


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """The home directory: an explicit one, else ``$OAUTH_HUB_HOME``, else the platform dir."""
    if home is not None:
        return Path(home)
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env)
    return platform_app_dir()


def ensure_home(home: Path) -> None:
    """Create the home with mode 0700, tightening it (and saying so) if it has looser bits."""
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        if os.name == "posix":
            mode = stat.S_IMODE(home.stat().st_mode)
            if mode & 0o077:
                os.chmod(home, 0o700)
                notify(f"{home} was readable by other users (mode {mode:o}); changed it to 700.")
    except OSError as exc:
        raise OAuthHubError(
            f"Cannot create or use {home}: {exc.strerror or exc}. "
            f"Set {HOME_ENV} to a writable directory."
        ) from None


def tighten_file(path: Path) -> None:
    """Make an existing secrets file private (0600) if it is not, and say so.

    Files we write are 0600 from the first byte; this catches ones copied in, restored
    from a backup or edited by hand, before their secrets are used or rewritten.
    """
    if os.name != "posix":
        return
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077:
            os.chmod(path, 0o600)
            notify(f"{path} was readable by other users (mode {mode:o}); changed it to 600.")
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OAuthHubError(f"Cannot make {path} private: {exc.strerror or exc}. Run `chmod 600 {path}`.") from None


def read_json(path: Path) -> Any | None:
    """Parse a JSON file of ours; ``None`` when it does not exist.

    Raises :class:`CorruptFileError` naming the file when it exists but is not valid
    JSON. The message never quotes the content (it may hold tokens).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OAuthHubError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        where = {json.JSONDecodeError: f"line {getattr(exc, 'lineno', '?')}", RecursionError: "nested too deeply"}.get(
            type(exc), "not UTF-8")
        raise CorruptFileError(
            f"{path} is not valid JSON ({where}); it was left untouched. "
            "Fix or remove it, then run the command again."
        ) from None


def write_private(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600 from the first byte.

    ``mode`` other than 0600 is for files that belong to another tool (an exporter keeps
    the mode the tool's file had); the temp file is still private until it is complete.
    """
    import tempfile  # imported here: the read path (oauth-hub token) never needs it

    directory = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    # mkstemp creates the file with O_EXCL and mode 0600 regardless of the umask.
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            if mode != 0o600 and os.name == "posix":
                os.fchmod(handle.fileno(), mode)
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    """Persist the rename itself; without it a crash can lose the new directory entry."""
    if os.name != "posix":
        return
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def write_json(path: Path, obj: Any) -> None:
    """Serialise ``obj`` and write it with :func:`write_private`."""
    write_private(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def set_aside(path: Path) -> Path:
    """Rename an unreadable file out of the way (keeping it, mode 0600) and return the new path.

    Used when a new login must write where a corrupt file sits: the old bytes are kept
    for the person to inspect rather than destroyed.
    """
    target = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, target)
    if os.name == "posix":
        os.chmod(target, 0o600)
    return target


_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


@contextlib.contextmanager
def provider_lock(path: Path, *, timeout: float, who: str) -> Iterator[None]:
    """Hold the exclusive lock at ``path`` across processes and threads.

    ``filelock`` takes an OS lock that the kernel releases if its holder dies, so a
    crashed process never wedges anyone; it is re-entrant within a process, so threads
    also take a lock of their own. A holder that keeps it past ``timeout`` seconds gets
    a one-line error naming the lock (``who`` says whose sign-in it guards).
    """
    from filelock import FileLock, Timeout

    with _thread_locks_guard:
        thread_lock = _thread_locks.setdefault(str(path), threading.Lock())
    with thread_lock:
        lock = FileLock(str(path), timeout=timeout, mode=0o600)
        try:
            lock.acquire()
        except Timeout:
            raise OAuthHubError(
                f"Another program has been using the {who} sign-in for {int(timeout)} seconds (lock {path}). "
                "Try again; if it persists, stop the other oauth-hub processes."
            ) from None
        try:
            yield
        finally:
            lock.release()


# -- accounts -------------------------------------------------------------------------
#
# A provider can hold several sign-ins, each a named *account*. Every file of an account
# is named after its *record name*: the provider's name for the account called
# ``main``, ``<provider>@<account>`` for the others. So a home written before accounts
# existed needs no migration at all: its ``chatgpt_oauth.json`` (and the lock, model and
# usage files beside it) *is* the account ``main``, and an older oauth-hub still
# running during an upgrade keeps sharing the same files and the same refresh lock.
# Which account a command uses when none is named is kept in ``accounts.json``
# (non-secret: ``{"version": 1, "defaults": {"chatgpt": "work"}}``).


def check_account(name: str) -> str:
    """Account names become file names and model prefixes: refuse anything but a plain slug."""
    if not isinstance(name, str) or not ACCOUNT_PATTERN.match(name):
        raise OAuthHubError(
            f"{name!r} is not a valid account name (lowercase letters, digits, '-' and '_', "
            "starting with a letter or digit), e.g. --account work."
        )
    return name


def record_name(provider: str, account: str) -> str:
    """``chatgpt`` for the account ``main``, ``chatgpt@work`` for the account ``work``."""
    return provider if account == MAIN_ACCOUNT else f"{provider}{ACCOUNT_SEP}{account}"


def split_record(record: str) -> tuple[str, str]:
    """``"chatgpt@work"`` -> ``("chatgpt", "work")``; ``"chatgpt"`` -> ``("chatgpt", "main")``."""
    provider, sep, account = record.partition(ACCOUNT_SEP)
    return provider, (account if sep else MAIN_ACCOUNT)


_index_cache: dict[str, tuple[tuple[int, int, int] | None, dict[str, str]]] = {}


_index_paths: dict[Path, str] = {}


def index_defaults(home: Path) -> dict[str, str]:
    """The ``defaults`` of ``accounts.json`` (provider -> account), re-read only when the file changed.

    On the hot path of ``get_token()``: one ``stat`` when nothing changed.
    """
    path = _index_paths.get(home)
    if path is None:
        path = _index_paths[home] = os.path.join(home, INDEX_FILE)
    try:
        st = os.stat(path)
        signature: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
    except FileNotFoundError:
        signature = None
    except OSError as exc:
        raise OAuthHubError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    cached = _index_cache.get(path)
    if cached is not None and cached[0] == signature:
        return cached[1]
    defaults: dict[str, str] = {}
    if signature is not None:
        data = read_json(Path(path))
        raw = data.get("defaults") if isinstance(data, dict) else None
        if not isinstance(raw, dict):
            raise CorruptFileError(f"{path} is not an account index; it was left untouched. "
                                   "Fix or remove it (then `oauth-hub accounts default PROVIDER NAME`).")
        defaults = {str(k): str(v) for k, v in raw.items() if isinstance(v, str) and ACCOUNT_PATTERN.match(v)}
    _index_cache[path] = (signature, defaults)
    return defaults


class Store:
    """The files of one home: ``<record>_oauth.json``, ``<record>_models.json`` … per account.

    ``name`` in the path methods is a record name (:func:`record_name`): a provider name
    for its ``main`` account, ``provider@account`` for another.
    """

    def __init__(self, home: str | os.PathLike[str] | None = None) -> None:
        self.home = resolve_home(home)

    def __repr__(self) -> str:
        return f"Store(home={str(self.home)!r})"

    def tokens_path(self, provider: str) -> Path:
        return self.home / f"{provider}_oauth.json"

    def models_path(self, provider: str) -> Path:
        return self.home / f"{provider}_models.json"

    def lock_path(self, provider: str) -> Path:
        return self.home / f"{provider}_oauth.lock"

    def config_path(self) -> Path:
        return self.home / "config.toml"

    def ensure(self) -> None:
        ensure_home(self.home)

    def index_path(self) -> Path:
        return self.home / INDEX_FILE

    def records(self, provider: str | None = None) -> list[tuple[str, str]]:
        """``(provider, account)`` of every stored sign-in (of ``provider``), found without importing any."""
        if not self.home.is_dir():
            return []
        found = []
        for path in self.home.glob(f"*{RECORD_SUFFIX}"):
            name, account = split_record(path.name[: -len(RECORD_SUFFIX)])
            if ACCOUNT_PATTERN.match(account) and (provider is None or name == provider):
                found.append((name, account))
        return sorted(found, key=lambda r: (r[0], r[1] != MAIN_ACCOUNT, r[1]))

    def accounts(self, provider: str) -> list[str]:
        """The provider's accounts: ``main`` first, then by name."""
        return [account for _, account in self.records(provider)]

    def signed_in_providers(self) -> list[str]:
        """Providers with at least one stored sign-in, found without importing any provider."""
        return sorted({name for name, _ in self.records()})

    def default_account(self, provider: str) -> str:
        """The account used when none is named: the one ``accounts default`` chose, else the first.

        "The first" is ``main`` (a sign-in older than accounts, or made without
        ``--account``), else the first by name; with none, ``main``, where a first
        ``login`` without ``--account`` puts its sign-in.
        """
        chosen = index_defaults(self.home).get(provider)
        if chosen is not None:
            return chosen
        if os.path.exists(self.tokens_path(provider)):
            return MAIN_ACCOUNT
        accounts = self.accounts(provider)
        return accounts[0] if accounts else MAIN_ACCOUNT

    def resolve_account(self, provider: str, account: str | None = None) -> str:
        """The account to use: ``account`` if named, else ``$OAUTH_HUB_ACCOUNT``, else the default."""
        if account is None:
            account = os.environ.get(ACCOUNT_ENV) or None
        if account is not None:
            return check_account(account)
        return self.default_account(provider)

    def set_default_account(self, provider: str, account: str | None) -> None:
        """Record ``account`` as the provider's default (``None``: forget the choice)."""
        path = self.index_path()
        data = read_json(path) if path.exists() else None
        if data is None:
            data = {"version": 1, "defaults": {}}
        if not isinstance(data, dict) or not isinstance(data.get("defaults"), dict):
            raise CorruptFileError(f"{path} is not an account index; it was left untouched. Fix or remove it.")
        if account is None:
            data["defaults"].pop(provider, None)
            if not data["defaults"]:  # the last sign-in is gone: leave no index behind
                path.unlink(missing_ok=True)
                return
        else:
            data["defaults"][provider] = check_account(account)
        self.ensure()
        write_json(path, data)
