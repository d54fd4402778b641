"""The token record's whole life: read, refresh, write, delete.

This module owns the token record of every account (``<record>_oauth.json``, or the
keyring entry its stub names: :mod:`oauth_core.keyring_storage`). Every function takes
``account``: ``None`` means ``$OAUTH_HUB_ACCOUNT`` or else the provider's default account
(:meth:`~oauth_core.store.Store.resolve_account`). Everything else that needs a sign-in
(``accounts``' status and logout, ``login``, ``serve``, the exporters, ``auth``) goes
through it, and it depends on none of them: the engine's import graph has no circle
(``tests/test_architecture.py`` walks it).

Always-valid tokens, refreshed once across every process that shares them.

Agent tools run for hours, and several of them share one sign-in. Access tokens expire
and refresh tokens rotate: if two processes refresh with the same refresh token, the
second is told ``refresh_token_reused`` and (at OpenAI) the whole sign-in is revoked.
So a refresh here is always:

1. take an exclusive lock beside the token file, one per account (``filelock``: an OS
   lock, released by the kernel if its holder dies, so a crashed process cannot wedge
   anyone; it stays a file in keyring mode too);
2. re-read the file: if another process already refreshed, use its result;
3. otherwise set aside the disk space for the answer and the new file, then call the
   provider's ``refresh_tokens`` hook (this spends the refresh token);
4. check the answer (a usable access token, sane types and sizes: else nothing changes),
   and write it, raw, to ``<provider>_oauth.pending`` in the space set aside: from this
   moment a crash, a full disk or a failed ID-token check cannot lose the rotated
   refresh token, because the next command finishes the refresh from that file instead
   of spending the old token again;
5. verify the ID token, label the account, write the token file (again into reserved
   space), and delete the pending file.

The API key is not touched by a refresh: tools were handed it (llm's key store, a
LiteLLM proxy started with it), and a new key on every refresh would leave their copy
stale. It is obtained at login, and again only when a call made with it is answered
401 (:func:`renew_api_key`).

A refresh is due when the access token expires within :data:`REFRESH_MARGIN`, when the
last refresh is older than :data:`MAX_AGE` (Codex's rule), or when a caller saw a 401
with the current token. Permanent failures leave the file byte-for-byte untouched and
raise :class:`~oauth_core.errors.SignInEnded`; transient ones are retried with backoff
by the HTTP layer and also leave the file alone. A caller whose refresh cannot happen
now (the IdP is down or answers garbage, another process holds the lock, the home is
read-only or full) gets the current access token while it is still valid, with a note
on stderr, and the error only once it is not.

The read path is cheap on purpose: :func:`get_token` keeps the parsed file in memory
keyed by its ``stat`` signature, so a hot loop costs one ``os.stat`` yet still sees a
refresh that another process wrote. It imports neither ``requests`` nor pluggy unless
a refresh is actually due.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import plugins
from .credentials import Credentials, parse_iso, token_answer_problem
from .discovery import LOAD_ENV
from .errors import (
    BadAnswer,
    CorruptFileError,
    IdPError,
    NetworkError,
    NotLoggedIn,
    OAuthHubError,
    ProviderNotFound,
    SignInEnded,
    notify,
)
from .provider import check_name
from .store import (
    ACCOUNT_ENV,
    HOME_ENV,
    MAIN_ACCOUNT,
    HomeError,
    LockBusy,
    Reservation,
    Store,
    check_account,
    home_error,
    index_defaults,
    provider_lock,
    read_json,
    record_name,
    remove_file,
    tighten_file,
    write_json,
    write_private,
)

REFRESH_MARGIN = 5 * 60  # refresh this many seconds before the access token expires
MAX_AGE = 8 * 24 * 3600  # and at the latest this long after the previous refresh
LOCK_TIMEOUT = 30.0  # seconds to wait for another process's refresh
RESERVE_SLACK = 64 * 1024  # bytes set aside beyond the largest answer, for the record's other fields


class RefreshPending(OAuthHubError):
    """A refresh answer arrived and is kept in ``<provider>_oauth.pending``, but could not be finished yet.

    ``cause`` is what stopped it (an ID token that did not verify, a full disk …).
    """

    def __init__(self, message: str, cause: OAuthHubError | None = None) -> None:
        super().__init__(message)
        self.cause = cause

# -- the record on disk -------------------------------------------------------------


def known_name(name: str, store: Store) -> str:
    """Check ``name`` is an installed provider or has a token file; else list the known ones."""
    check_name(name)
    names = plugins.provider_names(store.home)
    if name in names:
        return name
    excluded = plugins.not_loaded(name)  # left out by OAUTH_HUB_LOAD_PLUGINS: refused by every command alike
    if excluded:
        raise ProviderNotFound(excluded)
    try:
        signed_in = bool(store.records(name))
    except OSError as exc:
        raise home_error(exc, store.home, "check") from None
    if signed_in:
        return name  # a sign-in whose provider was uninstalled can still be shown and logged out of
    known = ", ".join(names) or "none installed"
    raise ProviderNotFound(f"Unknown provider {name!r}. Known providers: {known}.")


def command_target(provider: str, account: str) -> str:
    """How commands name this account: ``chatgpt`` for ``main``, ``chatgpt --account work`` otherwise."""
    return provider if account == MAIN_ACCOUNT else f"{provider} --account {account}"


def not_signed_in(provider: str, account: str, store: Store) -> NotLoggedIn:
    """The error for an account with no sign-in, naming the accounts there are."""
    if account == MAIN_ACCOUNT and not store.records(provider):
        return NotLoggedIn(f"Not signed in to {provider}. Run `oauth-hub login {provider}` first.")
    others = ", ".join(store.accounts(provider)) or "none"
    return NotLoggedIn(f"{provider} has no account {account!r} (its accounts: {others}). Run "
                       f"`oauth-hub login {command_target(provider, account)}` to add it.")


def load_credentials(name: str, store: Store, account: str | None = None) -> Credentials | None:
    """The stored credentials of ``name``'s account (default: the default one); ``None`` when not signed in."""
    account = store.resolve_account(name, account)
    path = store.tokens_path(record_name(name, account))
    tighten_file(path)
    hint = command_target(name, account)
    try:
        data = read_json(path)
    except CorruptFileError as exc:
        raise CorruptFileError(f"{exc} Or sign in again with `oauth-hub login {hint}`: it keeps the unreadable "
                               "file aside.") from None
    if data is None:
        return None
    if not isinstance(data, dict):
        raise CorruptFileError(f"{path} does not hold a JSON object; it was left untouched. "
                               f"Run `oauth-hub logout {hint}` and log in again.")
    if data.get("storage") == "keyring":  # a stub: the record itself is in the keyring
        from . import keyring_storage

        service, username = keyring_storage.stub_entry(data, path)
        data = keyring_storage.read_record(service, username, path, hint)
    try:
        return Credentials.from_json(name, data, account_name=account)
    except (TypeError, ValueError) as exc:
        raise CorruptFileError(f"{path} has an invalid {exc}; it was left untouched. "
                               f"Run `oauth-hub logout {hint}` and log in again.") from None


def storage_setting(store: Store) -> str:
    """The ``storage`` setting of ``config.toml``: ``file`` (default), ``keyring`` or ``auto``."""
    from . import config
    from .keyring_storage import configured

    path = store.config_path()
    return configured(config.load(path), path)


def _encode(payload: dict[str, Any]) -> bytes:
    return (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode("utf-8")


def save_credentials(store: Store, credentials: Credentials, *, storage: str | None = None,
                     space: Reservation | None = None) -> Path:
    """Write the record where the ``storage`` setting says; returns the path of its file.

    With ``space`` (set aside earlier) a file write needs no new disk space when it fits.

    ``file``: the record itself, atomically, private from the first byte. ``keyring``:
    the record into the OS keyring first, then the stub that names it (atomically
    replacing whatever was in the file, so a record moved from a file leaves no token
    behind). Moving back to ``file`` deletes the keyring entry once the file is written.
    """
    record = record_name(credentials.provider, check_account(credentials.account_name))
    path = store.tokens_path(record)
    from . import keyring_storage

    where = keyring_storage.resolve(storage if storage is not None else storage_setting(store))
    try:
        previous = read_json(path)
    except CorruptFileError:
        previous = None
    old_entry = keyring_storage.stub_entry(previous, path) if keyring_storage.is_stub(previous) else None
    payload = credentials.to_json()
    if where == "keyring":
        service, username = old_entry or (keyring_storage.SERVICE, keyring_storage.entry_username(store.home, record))
        store.ensure()
        with provider_lock(store.home / keyring_storage.KEYRING_LOCK, timeout=LOCK_TIMEOUT, who="keyring"):
            keyring_storage.write_record(service, username, payload)
        write_json(path, keyring_storage.stub_for(payload, service, username))
        return path
    data = _encode(payload)
    if space is not None and len(data) <= space.size:
        space.fill(path, data)
    else:
        write_private(path, data)
    if old_entry is not None:
        delete_keyring_entry(store, *old_entry)
    return path


def pending_refresh_token(store: Store, record: str) -> str | None:
    """The refresh token of an unfinished refresh of ``record`` (the live one), if there is one."""
    try:
        kept = read_json(store.pending_path(record))
    except OAuthHubError:
        return None
    answer = kept.get("answer") if isinstance(kept, dict) else None
    token = answer.get("refresh_token") if isinstance(answer, dict) else None
    return token if isinstance(token, str) and token else None


def discard_pending(store: Store, record: str) -> bool:
    """Delete a refresh answer kept for ``record`` (login and logout replace the whole sign-in)."""
    return remove_file(store.pending_path(record))


def apply_storage(*, home: str | Path | None = None) -> list[dict[str, str]]:
    """Move every stored sign-in to where the ``storage`` setting says now, each under its lock.

    Returns ``[{"record", "from", "to"}]`` for the records that moved. A record that
    cannot be read is left as it is (and reported with ``"error"``).
    """
    from . import keyring_storage

    store = Store(home)
    where = keyring_storage.resolve(storage_setting(store))
    moved = []
    for provider, account in store.records():
        record = record_name(provider, account)
        with provider_lock(store.lock_path(record), timeout=LOCK_TIMEOUT, who=_who(provider, account)):
            try:
                current = read_json(store.tokens_path(record))
                now = "keyring" if keyring_storage.is_stub(current) else "file"
                if now == where:
                    continue
                credentials = load_credentials(provider, store, account)
                if credentials is None:
                    continue
                save_credentials(store, credentials, storage=where)
                moved.append({"record": record, "from": now, "to": where})
            except OAuthHubError as exc:
                moved.append({"record": record, "from": "?", "to": where, "error": str(exc)})
    return moved


def delete_keyring_entry(store: Store, service: str, username: str) -> bool:
    from . import keyring_storage

    with provider_lock(store.home / keyring_storage.KEYRING_LOCK, timeout=LOCK_TIMEOUT, who="keyring"):
        return keyring_storage.delete_record(service, username)


def delete_record(store: Store, provider: str, account: str) -> bool:
    """Delete an account's record: its file, and the keyring entry a stub names. Under :func:`record_lock`."""
    from . import keyring_storage

    path = store.tokens_path(record_name(provider, account))
    try:
        data = read_json(path)
    except CorruptFileError:
        data = None
    if keyring_storage.is_stub(data):
        delete_keyring_entry(store, *keyring_storage.stub_entry(data, path))
    return remove_file(path)


def record_lock(store: Store, name: str) -> Any:
    """The lock every change of a record is made under, for logout: removed when done.

    ``name`` is the record name (:func:`~oauth_core.store.record_name`): one lock per account.

    Refreshes take the same lock (:func:`refresh_credentials`); logout holds it so a
    refresh running in another process cannot write the record back after it was
    deleted. The lock file is removed while still held: a refresh that starts later
    finds no token file and stops, so that is harmless, and logout leaves nothing.
    """
    import contextlib

    if not store.home.is_dir():
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def held() -> Any:
        with provider_lock(store.lock_path(name), timeout=LOCK_TIMEOUT, who=name):
            try:
                yield
            finally:
                remove_file(store.lock_path(name))

    return held()


# -- always-valid tokens ------------------------------------------------------------

_cache: dict[str, tuple[tuple[int, int, int], Credentials, float]] = {}
_stores: dict[tuple[str | None, str | None], Store] = {}
_paths: dict[tuple[str, str, str], str] = {}
_cache_lock = threading.Lock()


def _signature(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise home_error(exc, path, "read") from None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def refresh_due_at(credentials: Credentials) -> float:
    """The epoch second from which the credentials need a refresh (``-inf``: already)."""
    if not credentials.access_token:
        return float("-inf")
    if not credentials.refresh_token:
        # Nothing to refresh with (an IdP that issued no refresh token): the access token
        # is handed out for as long as it works, and only then does a refresh fail and
        # say to log in again.
        return credentials.expires_at if credentials.expires_at is not None else float("inf")
    due = float("inf")
    last = parse_iso(credentials.last_refresh)
    if credentials.expires_at is not None:
        margin = REFRESH_MARGIN
        if last is not None:
            # A token that lives less than twice the margin is refreshed half-way
            # through instead, or every use would refresh it.
            margin = min(margin, max(credentials.expires_at - last, 0) / 2)
        due = credentials.expires_at - margin
    if last is not None:
        due = min(due, last + MAX_AGE)
    return due


def needs_refresh(credentials: Credentials, now: float | None = None) -> bool:
    """True when the access token is (nearly) expired or the last refresh is too old."""
    return (time.time() if now is None else now) >= refresh_due_at(credentials)


def _locate(name: str, home: str | Path | None, account: str | None) -> tuple[Store, str, str]:
    """The store, the account and its token-file path; memoised, since pathlib is slow in a hot loop.

    The account named, else ``$OAUTH_HUB_ACCOUNT``, else the provider's default (one
    ``stat`` of ``accounts.json``, which ``accounts default`` may change at any time).
    """
    key = (None if home is None else os.fspath(home), os.environ.get(HOME_ENV))
    store = _stores.get(key)
    if store is None:
        store = _stores[key] = Store(home)
    if account is None:
        account = os.environ.get(ACCOUNT_ENV) or index_defaults(store.home).get(name)
        if account is None:  # no default chosen: `main` if it exists (checked by the caller's stat), else the first
            path = _record_path(store, key, name, MAIN_ACCOUNT)
            if os.path.exists(path):
                return store, MAIN_ACCOUNT, path
            account = store.default_account(check_name(name))
    return store, account, _record_path(store, key, name, account)


def _record_path(store: Store, key: tuple[str | None, str | None], name: str, account: str) -> str:
    record_key = (key[0] or key[1] or "", name, account)
    path = _paths.get(record_key)
    if path is None:
        path = _paths[record_key] = str(store.tokens_path(record_name(check_name(name), check_account(account))))
    return path


def _read(name: str, home: str | Path | None, account: str | None = None) -> tuple[Credentials, float]:
    """The stored credentials and when they fall due, cached while the file is unchanged."""
    store, account, path = _locate(name, home, account)
    if LOAD_ENV in os.environ:
        _check_loaded(name, store)
    signature = _signature(path)
    if signature is None:
        known_name(name, store)  # an unknown name gets the list of known ones
        raise not_signed_in(name, account, store)
    cached = _cache.get(path)
    if cached is not None and cached[0] == signature:
        return cached[1], cached[2]
    credentials = load_credentials(name, store, account)
    if credentials is None:
        raise not_signed_in(name, account, store)
    due = refresh_due_at(credentials)
    with _cache_lock:
        _cache[path] = (signature, credentials, due)
    return credentials, due


_loaded_checked: set[tuple[str, str, str]] = set()


def _check_loaded(name: str, store: Store) -> None:
    """With ``OAUTH_HUB_LOAD_PLUGINS`` set, refuse a provider it leaves out, as every command does.

    Without the variable every installed provider is loaded, so the hot path skips this.
    """
    key = (name, os.environ.get(LOAD_ENV, ""), str(store.home))
    if key not in _loaded_checked:
        known_name(name, store)
        _loaded_checked.add(key)


def get_credentials(provider: str, *, home: str | Path | None = None, refresh: bool = True,
                    account: str | None = None) -> Credentials:
    """The whole stored record, refreshed first if due. A copy: changing it changes nothing.

    ``account``: which of the provider's accounts (default: ``$OAUTH_HUB_ACCOUNT``, else
    the provider's default account); ``credentials.account_name`` says which one it was.
    """
    credentials, due = _read(provider, home, account)
    if refresh and time.time() >= due:
        credentials = _refresh_or_keep(provider, home, credentials)
    return credentials.copy()


def get_token(provider: str, *, home: str | Path | None = None, account: str | None = None) -> str:
    """A valid access token for ``provider`` (its ``account``, default the default one), refreshed if needed."""
    credentials, due = _read(provider, home, account)
    if time.time() >= due:
        credentials = _refresh_or_keep(provider, home, credentials)
    assert credentials.access_token
    return credentials.access_token


def _refresh_or_keep(provider: str, home: str | Path | None, credentials: Credentials) -> Credentials:
    """Refresh a due sign-in; if that cannot happen now but the token still works, use it.

    A refresh falls due minutes before expiry (or after 8 days), so an IdP outage, a
    garbage answer, another process sitting on the lock, or a read-only or full home
    must not make a perfectly valid token unavailable. Permanent failures
    (:class:`SignInEnded`, a 4xx refusal) and an already-expired token still raise.
    """
    try:
        return refresh_credentials(provider, home=home, stale_token=credentials.access_token,
                                   account=credentials.account_name)
    except OAuthHubError as exc:
        if not _can_wait(exc):
            raise
        left = credentials.seconds_left()
        if not credentials.access_token or left is None or left <= 0:
            raise
        notify(f"Could not refresh the {provider} sign-in ({exc}); using the current token, valid for "
               f"{int(left // 60)} more minutes.")
        return credentials


def _can_wait(exc: OAuthHubError) -> bool:
    """Whether a failed refresh may be tried again later while the current token is still used."""
    if isinstance(exc, (NetworkError, BadAnswer, LockBusy, HomeError, RefreshPending)):
        return True
    return isinstance(exc, IdPError) and (exc.status or 0) >= 500


def get_api_key(provider: str, *, home: str | Path | None = None, account: str | None = None) -> str:
    """The account's API key; raises when the account has none (subscription mode)."""
    credentials = get_credentials(provider, home=home, account=account)
    if not credentials.api_key:
        raise OAuthHubError(
            f"{provider} has no API key for this account (it signs in with a subscription). "
            f"Use the access token instead: `oauth-hub token {command_target(provider, credentials.account_name)}`."
        )
    return credentials.api_key


def refresh_credentials(
    provider: str,
    *,
    home: str | Path | None = None,
    force: bool = False,
    stale_token: str | None = None,
    http: Any = None,
    account: str | None = None,
) -> Credentials:
    """Refresh under the cross-process lock; see the module docstring.

    ``stale_token`` is the access token the caller found wanting (expired, or answered
    with 401): if the file already holds a different, fresh token, another process has
    refreshed and that one is returned without a request. ``force`` refreshes even
    then (``oauth-hub refresh``).
    """
    store = Store(home)
    known_name(provider, store)
    account = store.resolve_account(provider, account)
    record = record_name(provider, account)
    store.ensure()
    with provider_lock(store.lock_path(record), timeout=LOCK_TIMEOUT, who=_who(provider, account)):
        current = load_credentials(provider, store, account)
        if current is None:
            raise not_signed_in(provider, account, store)
        discard_reservations(store, record)
        if os.path.lexists(store.pending_path(record)):
            # An earlier refresh spent the refresh token and was stopped before finishing:
            # its answer holds the only valid one. Finish from it, never spend the old one.
            current = _finish_pending(provider, store, current, http)
        someone_else_refreshed = stale_token is not None and current.access_token != stale_token
        if not force and (someone_else_refreshed or stale_token is None) and not needs_refresh(current):
            return current
        return _refresh_locked(provider, store, current, http)


def _check_answer(provider: Any, answer: Any) -> None:
    problem = token_answer_problem(answer, refresh=True)
    if problem:
        raise BadAnswer(f"{provider.title} answered the refresh with an unusable answer ({problem}); nothing was "
                        f"changed. Try again later; if it persists, run `oauth-hub login {provider.name}`.")


@contextlib.contextmanager
def _reserved(store: Store, record: str, answer_size: int) -> Iterator[tuple[Reservation, Reservation]]:
    """Disk space for the pending answer and for the new token file of ``record``, set aside together."""
    tokens_path = store.tokens_path(record)
    try:
        record_size = os.lstat(tokens_path).st_size
    except FileNotFoundError:
        record_size = 0
    except OSError as exc:
        raise home_error(exc, tokens_path, "check") from None
    with Reservation(store.home, store.pending_path(record).name, answer_size + RESERVE_SLACK) as pending, \
            Reservation(store.home, f"{tokens_path.name}.refresh", record_size + answer_size + RESERVE_SLACK) \
            as record:
        yield pending, record


def discard_reservations(store: Store, name: str) -> None:
    """Remove space a refresher of record ``name`` set aside and never used: it was killed.

    Called with the lock held, so no living refresher owns what is found.
    """
    if not store.home.is_dir():
        return
    patterns = (f".{store.pending_path(name).name}.*.reserved", f".{store.tokens_path(name).name}.refresh.*.reserved")
    for pattern in patterns:
        for stale in store.home.glob(pattern):
            with contextlib.suppress(OSError):
                os.unlink(stale)


def _refresh_locked(provider: str, store: Store, current: Credentials, http: Any) -> Credentials:
    from .http import MAX_ANSWER, HttpClient
    from .provider import Provider

    if not current.refresh_token:
        left = current.seconds_left()
        if left is None:  # a credential that never expires (an API key): only the provider can end it
            raise SignInEnded(
                f"The {provider} sign-in has no refresh token, so there is nothing to renew it with. If the "
                f"provider stopped accepting it, run `oauth-hub login {provider}` to sign in again."
            )
        when = "has expired" if left <= 0 else f"ends in {max(round(left / 60), 1)} minutes"
        raise SignInEnded(
            f"The {provider} sign-in {when} and came without a refresh token, so it cannot be renewed. "
            f"Run `oauth-hub login {provider}` to sign in again."
        )
    loaded = Provider.load(provider, store)
    http = http or HttpClient()
    loaded.resolve(http)
    loaded.signing_keys(http)  # before the refresh token is spent: see Provider.signing_keys
    limit = int(getattr(http, "max_answer", MAX_ANSWER))
    # A full disk or a read-only home fails here, before the refresh token is spent.
    record = _record_of(current)
    with _reserved(store, record, limit) as (pending_space, record_space):
        # The refresh token is spent the moment the IdP takes the request: its answer is
        # put on disk by the HTTP layer itself, as soon as its last byte is in (_Keeper),
        # before it is even handed back here. Then it is checked, and dropped if unusable.
        keeper = _Keeper(store.pending_path(record), pending_space)
        previous = getattr(http, "keep_answer", None)
        if hasattr(http, "keep_answer"):
            http.keep_answer = keeper
        try:
            answer = loaded.call("refresh_tokens", http=http, credentials=current)
        finally:
            if hasattr(http, "keep_answer"):
                http.keep_answer = previous
        received_at = keeper.received_at or time.time()
        try:
            _check_answer(loaded, answer)
        except BadAnswer:
            keeper.discard()
            raise
        if keeper.received_at is None:  # the hook got its answer some other way
            _keep_pending(store, record, answer, received_at, pending_space)
        elif keeper.kept != answer:  # the hook changed the answer: keep what it returned (the raw one is safe)
            with contextlib.suppress(HomeError):
                _keep_pending(store, record, answer, received_at, None)
        return _finish(loaded, store, current, answer, received_at, http, record_space)


class _Keeper:
    """Puts a refresh answer's raw bytes on disk, in the space set aside, the moment they are in.

    Called by :class:`~oauth_core.http.HttpClient` on the request's own thread, so no
    thread hand-over, JSON decoding or provider code stands between the last byte
    received and the file in place (benchmarks/bench_crash_refresh.py measures that
    window). The bytes are wrapped, not decoded: ``{"version": 1, "received_at": …,
    "answer": <the body>}``; a body that is not JSON makes a file that is dropped below,
    or by the next run.
    """

    def __init__(self, path: Path, space: Reservation) -> None:
        self.path = path
        self.space = space
        self.received_at: float | None = None
        self.kept: Any = None

    def __call__(self, body: bytes) -> None:
        if self.received_at is not None:
            return  # one answer per refresh; a second request's answer is not the token's
        received_at = time.time()
        self.space.fill(self.path, b'{"version": 1, "received_at": %r, "answer": %s}' % (received_at, body),
                        sync_first=False)  # in place at once: a kill -9 must find it
        self.received_at = received_at
        with contextlib.suppress(ValueError, RecursionError):
            self.kept = json.loads(body)

    def discard(self) -> None:
        if self.received_at is not None:
            with contextlib.suppress(HomeError):
                remove_file(self.path)


def _keep_pending(store: Store, record: str, answer: Any, received_at: float, space: Reservation | None) -> None:
    journal = json.dumps({"version": 1, "received_at": received_at, "answer": answer}).encode("utf-8")
    path = store.pending_path(record)
    if space is not None and space.path is not None and len(journal) <= space.size:
        space.fill(path, journal, sync_first=False)  # in place at once: a kill -9 must find it
    else:
        write_private(path, journal)


def _finish(loaded: Any, store: Store, current: Credentials, answer: Any, received_at: float, http: Any,
            space: Reservation | None) -> Credentials:
    """Make a kept refresh answer into the token file, then let the pending copy go.

    Anything that fails here (an ID token that does not verify, a full disk) leaves the
    pending file, so the refresh can be finished later without spending a token again.
    """
    pending = store.pending_path(_record_of(current))
    try:
        updated = loaded.credentials_from(answer, previous=current, http=http, received_at=received_at)
        updated.account_name = current.account_name
        save_credentials(store, updated, space=space)
    except OAuthHubError as exc:
        raise RefreshPending(f"{exc} The refreshed sign-in is kept in {pending} and the next command finishes "
                             "from it.", cause=exc) from None
    with contextlib.suppress(HomeError):  # left behind, it is finished again harmlessly next time
        remove_file(pending)
    return updated


def _finish_pending(provider: str, store: Store, current: Credentials, http: Any) -> Credentials:
    """Finish a refresh whose answer was kept but not made into the token file (a crash, a full disk)."""
    from .http import HttpClient
    from .provider import Provider

    record = _record_of(current)
    path = store.pending_path(record)
    try:
        kept = read_json(path)
    except CorruptFileError:
        kept = None
    answer = kept.get("answer") if isinstance(kept, dict) else None
    received_at = kept.get("received_at") if isinstance(kept, dict) else None
    if token_answer_problem(answer, refresh=True) or isinstance(received_at, bool) \
            or not isinstance(received_at, (int, float)):
        # An answer that was unusable when it came (kept before it could be checked, then
        # the process died): it holds no token that works, so there is nothing to finish.
        remove_file(path)
        notify(f"Removed {path}: a refresh answer that holds no usable token.")
        return current
    loaded = Provider.load(provider, store)
    http = http or HttpClient()
    loaded.resolve(http)
    try:
        record_size = os.lstat(store.tokens_path(record)).st_size
    except OSError:
        record_size = 0
    with Reservation(store.home, f"{store.tokens_path(record).name}.refresh",
                     record_size + len(json.dumps(answer)) + RESERVE_SLACK) as space:
        return _finish(loaded, store, current, answer, float(received_at), http, space)


def _record_of(credentials: Credentials) -> str:
    """The record (file and lock name) the credentials belong to: ``chatgpt``, ``chatgpt@work``."""
    return record_name(credentials.provider, credentials.account_name)


def _who(provider: str, account: str) -> str:
    """Whose lock, in an error message: ``chatgpt`` or ``chatgpt (account work)``."""
    return provider if account == MAIN_ACCOUNT else f"{provider} (account {account})"


def renew_api_key(
    provider: str, *, home: str | Path | None = None, stale_key: str | None = None, http: Any = None,
    account: str | None = None,
) -> Credentials:
    """Replace an API key that an API answered 401 to; return the updated credentials.

    Under the refresh lock: if the file already holds another key, another process has
    renewed it and that is used. Otherwise a new key is asked for with the stored
    tokens first, and only if that fails are the tokens refreshed (spending the
    refresh token) and the key asked for again. Without a new key the credentials are
    returned as they are (the caller's retry then fails as the first call did).
    """
    from .http import HttpClient
    from .provider import Provider

    store = Store(home)
    known_name(provider, store)
    account = store.resolve_account(provider, account)
    store.ensure()
    with provider_lock(store.lock_path(record_name(provider, account)), timeout=LOCK_TIMEOUT,
                       who=_who(provider, account)):
        current = load_credentials(provider, store, account)
        if current is None:
            raise not_signed_in(provider, account, store)
        discard_reservations(store, record_name(provider, account))
        if os.path.lexists(store.pending_path(record_name(provider, account))):
            current = _finish_pending(provider, store, current, http)  # never spend a token already spent
        if current.api_key and current.api_key != stale_key:
            return current
        loaded = Provider.load(provider, store)
        if not loaded.has("obtain_api_key"):
            return current
        http = http or HttpClient()
        loaded.resolve(http)
        if loaded.attach_api_key(current, http) is None and current.api_key != stale_key:
            save_credentials(store, current)
            return current
        updated = _refresh_locked(provider, store, current, http)
        if loaded.attach_api_key(updated, http) is None and updated.api_key != stale_key:
            save_credentials(store, updated)
        return updated


def get_environment(provider: str, *, home: str | Path | None = None, account: str | None = None) -> dict[str, str]:
    """Environment variables that hand the (fresh) credentials to another program.

    The provider names them (``environment`` hook), e.g. ``CHATGPT_OAUTH_API_KEY``; the
    names are the same for every account (``exec --account work`` runs a tool with the
    work account's values under the names it reads).
    """
    from .provider import Provider

    credentials = get_credentials(provider, home=home, account=account)
    loaded = Provider.load(provider, Store(home))
    env = loaded.call("environment", required=False, credentials=credentials) or {}
    return {str(k): str(v) for k, v in env.items() if v}


def auth_headers(
    provider: str, credentials: Credentials, *, use_api_key: bool, home: str | Path | None = None
) -> dict[str, str]:
    """Headers that authenticate an API call with these credentials (the provider's choice)."""
    from .provider import Provider

    return Provider.load(provider, Store(home)).auth_headers(credentials, use_api_key)
