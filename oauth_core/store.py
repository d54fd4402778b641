"""Where oauth-hub keeps its files, and how it writes them safely.

Token files hold live credentials, so every write is atomic and private from the first
byte: a temp file created with mode 0600 in the same directory, written, fsynced, then
``os.replace``d over the target. A reader (another agent tool) therefore sees either the
old file or the new one, never half of one, and never a moment where the file is
world-readable. The home itself is kept at 0700.

A file that exists but cannot be parsed is reported with its path and left untouched:
silently replacing it could destroy the only copy of a refresh token.

The home's files are never reached through a symbolic link (``O_NOFOLLOW``): a link
planted at ``chatgpt_oauth.json`` must not make oauth-hub read, chmod or overwrite some
other file. Every OS error (disk full, read-only file system, permissions, a link or a
directory in the way) becomes a :class:`HomeError`: one line naming the file and what
to do about it. And before an action that cannot be undone (spending a refresh token),
:class:`Reservation` sets the disk space for its result aside, so a full disk is found
out while nothing is lost yet.
"""

from __future__ import annotations

import contextlib
import errno
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

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_READ_FLAGS = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0) \
    | getattr(os, "O_BINARY", 0)


class HomeError(OAuthHubError):
    """A file or directory of the home cannot be used: disk full, read-only, permissions, a link in the way."""

    def __init__(self, message: str, *, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class LockBusy(OAuthHubError):
    """Another process has held a sign-in's lock for longer than we wait."""


def _advice(code: int | None, path: Path) -> str:
    """What a person can do about an OS error on ``path``, one sentence."""
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return "The disk (or your quota) is full: free some space, then run the command again."
    if code == errno.EROFS:
        return (f"It is on a read-only file system: make it writable, or set {HOME_ENV} to a writable "
                "directory.")
    if code in (errno.EACCES, errno.EPERM):
        return (f"Check its owner and mode (`ls -ld {path}`; the home should be yours, mode 700), or set "
                f"{HOME_ENV} to a directory of yours.")
    if code == errno.ELOOP:
        return (f"{path} is a symbolic link, and oauth-hub never follows links in its home: replace it with "
                "the file itself, or remove it.")
    if code == errno.EISDIR:
        return f"{path} is a directory where oauth-hub keeps a file: move it away, then run the command again."
    if code == errno.ENOTDIR:
        return f"A part of {path} is a file where a directory belongs: set {HOME_ENV} to a directory."
    return "Run `oauth-hub doctor` to check the home."


def home_error(exc: OSError, path: str | os.PathLike[str], doing: str) -> HomeError:
    """A one-line :class:`HomeError` for an OS error met while ``doing`` (e.g. "write") ``path``."""
    where = Path(path)
    reason = exc.strerror or type(exc).__name__
    if exc.errno == errno.ELOOP:
        reason = "it is a symbolic link"
    return HomeError(f"Cannot {doing} {where}: {reason}. {_advice(exc.errno, where)}", errno=exc.errno)


def describe_os_error(exc: OSError) -> str:
    """One line for any OS error, naming the file it carries (for the CLI's last line of defence)."""
    path = exc.filename if exc.filename is not None else "a file"
    return str(home_error(exc, path, "use"))


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
    except OSError as exc:
        raise home_error(exc, home, "create the directory") from None
    if os.name != "posix":
        return
    try:
        mode = stat.S_IMODE(home.stat().st_mode)
        if mode & 0o077:
            os.chmod(home, 0o700)
            notify(f"{home} was readable by other users (mode {mode:o}); changed it to 700.")
    except OSError as exc:
        raise home_error(exc, home, "make private") from None


def _open_regular(path: Path, doing: str) -> int | None:
    """An fd of the regular file at ``path`` (``None``: none there), never through a link.

    ``O_NOFOLLOW`` refuses a symbolic link in the last component; a directory, FIFO or
    device at the path is refused too (a FIFO is opened non-blocking, so it cannot hang us).
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise home_error(exc, path, doing) from None
    try:
        st = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise home_error(exc, path, doing) from None
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        code = errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EINVAL
        if code == errno.EISDIR:
            raise HomeError(f"Cannot {doing} {path}: it is a directory. {_advice(code, path)}", errno=code)
        raise HomeError(f"Cannot {doing} {path}: it is not a regular file. Remove it, then run the command "
                        "again.", errno=code)
    return fd


def tighten_file(path: Path) -> None:
    """Make an existing secrets file private (0600) if it is not, and say so.

    Files we write are 0600 from the first byte; this catches ones copied in, restored
    from a backup or edited by hand, before their secrets are used or rewritten. The
    mode is changed through the opened file (``fchmod``), never through a path that a
    symbolic link could redirect to another file; a link or a directory there is an error.
    """
    if os.name != "posix":
        return
    fd = _open_regular(path, "check the permissions of")
    if fd is None:
        return
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077:
            os.fchmod(fd, 0o600)
            notify(f"{path} was readable by other users (mode {mode:o}); changed it to 600.")
    except OSError as exc:
        raise home_error(exc, path, "make private") from None
    finally:
        os.close(fd)


def read_private(path: Path) -> bytes | None:
    """The bytes of a file in the home (``None`` when there is none), never through a link."""
    fd = _open_regular(path, "read")
    if fd is None:
        return None
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    except OSError as exc:
        raise home_error(exc, path, "read") from None
    finally:
        os.close(fd)


def check_file_slot(path: Path) -> None:
    """Refuse a directory or a symbolic link where oauth-hub is about to write a file.

    Called before an action that cannot be repeated (spending an authorization code),
    so that the write at its end cannot fail on what is in the way.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise home_error(exc, path, "check") from None
    if stat.S_ISLNK(st.st_mode):
        raise HomeError(f"Cannot use {path}: it is a symbolic link. {_advice(errno.ELOOP, path)}", errno=errno.ELOOP)
    if stat.S_ISDIR(st.st_mode):
        raise HomeError(f"Cannot use {path}: it is a directory. {_advice(errno.EISDIR, path)}", errno=errno.EISDIR)


def read_json(path: Path) -> Any | None:
    """Parse a JSON file of ours; ``None`` when it does not exist.

    Raises :class:`CorruptFileError` naming the file when it exists but is not valid
    JSON. The message never quotes the content (it may hold tokens).
    """
    raw = read_private(path)
    if raw is None:
        return None
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
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise home_error(exc, path, "write") from None
    # mkstemp creates the file with O_EXCL and mode 0600 regardless of the umask.
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            if mode != 0o600 and os.name == "posix":
                os.fchmod(handle.fileno(), mode)
        os.replace(tmp_name, path)  # replaces a symbolic link itself, never what it points to
    except BaseException as exc:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise home_error(exc, path, "write") from None
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
    try:
        os.replace(path, target)
    except OSError as exc:
        raise home_error(exc, path, "set aside") from None
    tighten_file(target)
    return target


def remove_file(path: Path) -> bool:
    """Delete a file of the home (a link is removed itself); whether there was one."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise home_error(exc, path, "delete") from None
    _fsync_dir(path.parent)
    return True


class Reservation:
    """Disk space set aside in a directory, to be filled later without needing any more.

    Made *before* an action whose result must not be lost (a refresh that rotates the
    refresh token): a full disk or a read-only home then fails while nothing has been
    spent. ``fill`` overwrites the reserved file in place, cuts it to length, fsyncs and
    renames it over the target, so no new blocks are needed at the moment it matters.
    Space comes from ``posix_fallocate`` where the file system has it (no data written),
    else from writing zeros. On copy-on-write file systems (btrfs, ZFS) an overwrite can
    still need new blocks: there the reservation is a strong hint, not a promise.
    """

    def __init__(self, directory: Path, name: str, size: int) -> None:
        import tempfile

        self.size = size
        self.path: str | None = None
        self._fd: int | None = None
        try:
            self._fd, self.path = tempfile.mkstemp(prefix=f".{name}.", suffix=".reserved", dir=directory)
            _allocate(self._fd, size)
            os.fsync(self._fd)
        except OSError as exc:
            self.release()
            raise home_error(exc, directory / name, "set aside disk space for") from None

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def fill(self, target: Path, data: bytes, *, sync_first: bool = True) -> None:
        """Put ``data`` at ``target`` atomically, using the reserved space (grown if ``data`` needs more).

        ``sync_first`` (the usual order) fsyncs before the rename, so that after a power
        cut ``target`` is the old file or the new one. Without it the file is renamed
        into place first and fsynced after: for a new file that must be in place the
        moment the process could be killed (a refresh answer), a few milliseconds
        sooner; the page cache keeps it through a kill -9 of the process.
        """
        if self._fd is None or self.path is None:
            raise RuntimeError("reservation already used")
        fd, name = self._fd, self.path
        try:
            view = memoryview(data)
            offset = 0
            while offset < len(view):
                offset += os.pwrite(fd, view[offset:], offset)
            os.ftruncate(fd, len(data))
            if sync_first:
                os.fsync(fd)
            os.replace(name, target)
            self.path = None
            if not sync_first:
                os.fsync(fd)
            os.close(fd)
            self._fd = None
        except OSError as exc:
            raise home_error(exc, target, "write") from None
        _fsync_dir(target.parent)

    def release(self) -> None:
        """Give the space back (the temp file is removed); harmless after ``fill``."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        if self.path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            self.path = None


def _allocate(fd: int, size: int) -> None:
    """Make ``size`` bytes of ``fd`` real blocks on disk (ENOSPC now, not later)."""
    if size <= 0:
        return
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is not None:
        try:
            fallocate(fd, 0, size)
            return
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, getattr(errno, "ENOTSUP", -1), errno.ENOSYS):
                raise
    block = b"\0" * min(size, 1 << 16)
    written = 0
    while written < size:
        written += os.pwrite(fd, block[: size - written], written)


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

    busy = LockBusy(
        f"Another program has been using the {who} sign-in for {int(timeout)} seconds (lock {path}). "
        "Try again; if it persists, stop the other oauth-hub processes."
    )
    with _thread_locks_guard:
        thread_lock = _thread_locks.setdefault(str(path), threading.Lock())
    started = time.monotonic()
    if not thread_lock.acquire(timeout=max(timeout, 0)):
        raise busy
    try:
        check_file_slot(path)  # filelock opens with O_NOFOLLOW; this names the problem
        lock = FileLock(str(path), timeout=max(timeout - (time.monotonic() - started), 0), mode=0o600)
        try:
            lock.acquire()
        except Timeout:
            raise busy from None
        except OSError as exc:
            raise home_error(exc, path, "lock") from None
        try:
            yield
        finally:
            lock.release()
    finally:
        thread_lock.release()


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
        raise home_error(exc, path, "read") from None
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

    def pending_path(self, provider: str) -> Path:
        """A refresh answer received but not yet made into the token file (see oauth_core.tokens)."""
        return self.home / f"{provider}_oauth.pending"

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
