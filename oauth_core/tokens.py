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
3. otherwise call the provider's ``refresh_tokens`` hook, keep what the answer leaves
   out, and write atomically.

The API key is not touched by a refresh: tools were handed it (llm's key store, a
LiteLLM proxy started with it), and a new key on every refresh would leave their copy
stale. It is obtained at login, and again only when a call made with it is answered
401 (:func:`renew_api_key`).

A refresh is due when the access token expires within :data:`REFRESH_MARGIN`, when the
last refresh is older than :data:`MAX_AGE` (Codex's rule), or when a caller saw a 401
with the current token. Permanent failures leave the file byte-for-byte untouched and
raise :class:`~oauth_core.errors.SignInEnded`; transient ones are retried with backoff
by the HTTP layer and also leave the file alone.

The read path is cheap on purpose: :func:`get_token` keeps the parsed file in memory
keyed by its ``stat`` signature, so a hot loop costs one ``os.stat`` yet still sees a
refresh that another process wrote. It imports neither ``requests`` nor pluggy unless
a refresh is actually due.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from . import plugins
from .credentials import Credentials, parse_iso
from .discovery import LOAD_ENV
from .errors import (
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
    Store,
    check_account,
    index_defaults,
    provider_lock,
    read_json,
    record_name,
    tighten_file,
    write_json,
)

REFRESH_MARGIN = 5 * 60  # refresh this many seconds before the access token expires
MAX_AGE = 8 * 24 * 3600  # and at the latest this long after the previous refresh
LOCK_TIMEOUT = 30.0  # seconds to wait for another process's refresh

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
    if store.records(name):
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
    data = read_json(path)
    if data is None:
        return None
    hint = command_target(name, account)
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


def save_credentials(store: Store, credentials: Credentials, *, storage: str | None = None) -> Path:
    """Write the record where the ``storage`` setting says; returns the path of its file.

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
    write_json(path, payload)
    if old_entry is not None:
        delete_keyring_entry(store, *old_entry)
    return path


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
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise OAuthHubError(f"Cannot delete {path}: {exc.strerror or exc}.") from None
    return True


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
                store.lock_path(name).unlink(missing_ok=True)

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
    """Refresh a due sign-in; if the IdP is unreachable but the token still works, use it.

    A refresh falls due minutes before expiry (or after 8 days), so a short outage of
    the IdP must not make a perfectly valid token unavailable. Permanent failures
    (:class:`SignInEnded`) and an already-expired token still raise.
    """
    try:
        return refresh_credentials(provider, home=home, stale_token=credentials.access_token,
                                   account=credentials.account_name)
    except (NetworkError, IdPError) as exc:
        if isinstance(exc, IdPError) and (exc.status or 0) < 500:
            raise
        left = credentials.seconds_left()
        if not credentials.access_token or left is None or left <= 0:
            raise
        notify(f"Could not refresh the {provider} sign-in ({exc}); using the current token, valid for "
               f"{int(left // 60)} more minutes.")
        return credentials


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
        someone_else_refreshed = stale_token is not None and current.access_token != stale_token
        if not force and (someone_else_refreshed or stale_token is None) and not needs_refresh(current):
            return current
        return _refresh_locked(provider, store, current, http)


def _refresh_locked(provider: str, store: Store, current: Credentials, http: Any) -> Credentials:
    from .http import HttpClient
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
    answer = loaded.call("refresh_tokens", http=http, credentials=current)
    updated = loaded.credentials_from(answer, previous=current, http=http)
    save_credentials(store, updated)  # the rotated refresh token is on disk before anything else can fail
    return updated


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
