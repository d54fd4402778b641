"""The token record's whole life: read, refresh, write, delete.

This module owns ``<provider>_oauth.json``. Everything else that needs a sign-in
(``accounts``' status and logout, ``login``, ``serve``, the exporters, ``auth``) goes
through it, and it depends on none of them: the engine's import graph has no circle
(``tests/test_architecture.py`` walks it).

Always-valid tokens, refreshed once across every process that shares them.

Agent tools run for hours, and several of them share one sign-in. Access tokens expire
and refresh tokens rotate: if two processes refresh with the same refresh token, the
second is told ``refresh_token_reused`` and (at OpenAI) the whole sign-in is revoked.
So a refresh here is always:

1. take an exclusive lock beside the token file (``filelock``: an OS lock, released by
   the kernel if its holder dies, so a crashed process cannot wedge anyone);
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
from .store import HOME_ENV, Store, provider_lock, read_json, tighten_file, write_json

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
    if store.tokens_path(name).exists():
        return name  # a sign-in whose provider was uninstalled can still be shown and logged out of
    known = ", ".join(names) or "none installed"
    raise ProviderNotFound(f"Unknown provider {name!r}. Known providers: {known}.")


def load_credentials(name: str, store: Store) -> Credentials | None:
    """The stored credentials of ``name``; ``None`` when not signed in."""
    path = store.tokens_path(name)
    tighten_file(path)
    data = read_json(path)
    if data is None:
        return None
    if not isinstance(data, dict):
        raise CorruptFileError(f"{path} does not hold a JSON object; it was left untouched. "
                               f"Run `oauth-hub logout {name}` and log in again.")
    try:
        return Credentials.from_json(name, data)
    except (TypeError, ValueError) as exc:
        raise CorruptFileError(f"{path} has an invalid {exc}; it was left untouched. "
                               f"Run `oauth-hub logout {name}` and log in again.") from None


def save_credentials(store: Store, credentials: Credentials) -> Path:
    """Write the record atomically, private from the first byte; returns its path."""
    path = store.tokens_path(credentials.provider)
    write_json(path, credentials.to_json())
    return path


def record_lock(store: Store, name: str) -> Any:
    """The lock every change of ``name``'s record is made under, for logout: removed when done.

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
_paths: dict[tuple[str, str | None, str | None], tuple[Store, str]] = {}
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


def _locate(name: str, home: str | Path | None) -> tuple[Store, str]:
    """The store and token-file path for ``name``; memoised, since pathlib is slow in a hot loop."""
    key = (name, None if home is None else os.fspath(home), os.environ.get(HOME_ENV))
    found = _paths.get(key)
    if found is None:
        store = Store(home)
        found = _paths[key] = (store, str(store.tokens_path(check_name(name))))
    return found


def _read(name: str, home: str | Path | None) -> tuple[Credentials, float]:
    """The stored credentials and when they fall due, cached while the file is unchanged."""
    store, path = _locate(name, home)
    if LOAD_ENV in os.environ:
        _check_loaded(name, store)
    signature = _signature(path)
    if signature is None:
        known_name(name, store)  # an unknown name gets the list of known ones
        raise NotLoggedIn(f"Not signed in to {name}. Run `oauth-hub login {name}` first.")
    cached = _cache.get(path)
    if cached is not None and cached[0] == signature:
        return cached[1], cached[2]
    credentials = load_credentials(name, store)
    if credentials is None:
        raise NotLoggedIn(f"Not signed in to {name}. Run `oauth-hub login {name}` first.")
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


def get_credentials(provider: str, *, home: str | Path | None = None, refresh: bool = True) -> Credentials:
    """The whole stored record, refreshed first if due. A copy: changing it changes nothing."""
    credentials, due = _read(provider, home)
    if refresh and time.time() >= due:
        credentials = _refresh_or_keep(provider, home, credentials)
    return credentials.copy()


def get_token(provider: str, *, home: str | Path | None = None) -> str:
    """A valid access token for ``provider``, refreshing it if needed."""
    credentials, due = _read(provider, home)
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
        return refresh_credentials(provider, home=home, stale_token=credentials.access_token)
    except (NetworkError, IdPError) as exc:
        if isinstance(exc, IdPError) and (exc.status or 0) < 500:
            raise
        left = credentials.seconds_left()
        if not credentials.access_token or left is None or left <= 0:
            raise
        notify(f"Could not refresh the {provider} sign-in ({exc}); using the current token, valid for "
               f"{int(left // 60)} more minutes.")
        return credentials


def get_api_key(provider: str, *, home: str | Path | None = None) -> str:
    """The account's API key; raises when the account has none (subscription mode)."""
    credentials = get_credentials(provider, home=home)
    if not credentials.api_key:
        raise OAuthHubError(
            f"{provider} has no API key for this account (it signs in with a subscription). "
            f"Use the access token instead: `oauth-hub token {provider}`."
        )
    return credentials.api_key


def refresh_credentials(
    provider: str,
    *,
    home: str | Path | None = None,
    force: bool = False,
    stale_token: str | None = None,
    http: Any = None,
) -> Credentials:
    """Refresh under the cross-process lock; see the module docstring.

    ``stale_token`` is the access token the caller found wanting (expired, or answered
    with 401): if the file already holds a different, fresh token, another process has
    refreshed and that one is returned without a request. ``force`` refreshes even
    then (``oauth-hub refresh``).
    """
    store = Store(home)
    known_name(provider, store)
    store.ensure()
    with provider_lock(store.lock_path(provider), timeout=LOCK_TIMEOUT, who=provider):
        current = load_credentials(provider, store)
        if current is None:
            raise NotLoggedIn(f"Not signed in to {provider}. Run `oauth-hub login {provider}` first.")
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


def renew_api_key(
    provider: str, *, home: str | Path | None = None, stale_key: str | None = None, http: Any = None
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
    store.ensure()
    with provider_lock(store.lock_path(provider), timeout=LOCK_TIMEOUT, who=provider):
        current = load_credentials(provider, store)
        if current is None:
            raise NotLoggedIn(f"Not signed in to {provider}. Run `oauth-hub login {provider}` first.")
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


def get_environment(provider: str, *, home: str | Path | None = None) -> dict[str, str]:
    """Environment variables that hand the (fresh) credentials to another program.

    The provider names them (``environment`` hook), e.g. ``CHATGPT_OAUTH_API_KEY``.
    """
    from .provider import Provider

    credentials = get_credentials(provider, home=home)
    loaded = Provider.load(provider, Store(home))
    env = loaded.call("environment", required=False, credentials=credentials) or {}
    return {str(k): str(v) for k, v in env.items() if v}


def auth_headers(
    provider: str, credentials: Credentials, *, use_api_key: bool, home: str | Path | None = None
) -> dict[str, str]:
    """Headers that authenticate an API call with these credentials (the provider's choice)."""
    from .provider import Provider

    return Provider.load(provider, Store(home)).auth_headers(credentials, use_api_key)
