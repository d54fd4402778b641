"""Showing, switching and ending sign-ins: status, the account list, the default account, logout.

A provider may hold several accounts (``login chatgpt --account work``); each is a
record of its own (see :mod:`oauth_core.store`). ``status`` never imports a provider:
everything it shows was stored at login (``credentials.account``), so it costs a file
read. The token record itself is read, refreshed and deleted through
:mod:`oauth_core.tokens`, its only owner (``known_name`` and ``load_credentials`` are
re-exported here for older imports).

Model entries are named after the account's place: the default account's keep the
names they always had (``chatgpt-gpt-5``), another's carry its name
(``chatgpt-work-gpt-5``). Switching the default renames the two accounts' entries in
their model files, so ``serve`` and the next ``export`` follow.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import plugins
from .credentials import Credentials, parse_iso
from .errors import CorruptFileError, OAuthHubError
from .provider import Provider, account_prefix
from .store import Store, check_account, read_json, record_name, remove_file, write_json
from .tokens import (
    delete_record,
    discard_pending,
    discard_reservations,
    get_credentials,
    known_name,
    load_credentials,
    not_signed_in,
    pending_refresh_token,
    record_lock,
)

__all__ = ["known_name", "list_accounts", "load_credentials", "logout", "provider_status", "set_default_account",
           "status"]


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def provider_status(name: str, store: Store, account: str | None = None) -> dict[str, Any]:
    """One account's sign-in state as a JSON-ready dict (default: the provider's default account)."""
    account = store.resolve_account(name, account)
    record = record_name(name, account)
    row: dict[str, Any] = {"provider": name, "account": account,
                           "default": account == store.default_account(name), "logged_in": False,
                           "email": None, "plan": None,
                           "account_id": None, "has_api_key": False, "api_key_age_days": None,
                           "expires_at": None, "expires_in": None, "can_refresh": False, "last_refresh": None,
                           "models": [], "usage": None, "limits": None,
                           "tokens_path": str(store.tokens_path(record)), "storage": None, "error": None}
    try:
        row["storage"] = _storage_of(store, record)
        credentials = load_credentials(name, store, account)
    except OAuthHubError as exc:
        row["error"] = str(exc)
        return row
    if credentials is None:
        return row
    account = credentials.account
    obtained = parse_iso(credentials.api_key_obtained_at)
    left = credentials.seconds_left()
    row.update(
        logged_in=True,
        email=account.get("email"),
        plan=account.get("plan"),
        account_id=account.get("account_id"),
        has_api_key=bool(credentials.api_key),
        api_key_age_days=round((time.time() - obtained) / 86400, 1) if credentials.api_key and obtained else None,
        expires_at=_iso(credentials.expires_at),
        expires_in=int(left) if left is not None else None,
        can_refresh=bool(credentials.refresh_token),
        last_refresh=credentials.last_refresh,
    )
    try:
        models = read_json(store.models_path(record))
    except OAuthHubError as exc:
        row["error"] = str(exc)
        models = None
    row["models"] = sorted(models) if isinstance(models, dict) else []
    row["usage"] = _usage(store, record, credentials)
    return row


def _storage_of(store: Store, record: str) -> str | None:
    """Where a record lives: ``file``, ``keyring`` (its file is a stub), or ``None`` when there is none."""
    data = read_json(store.tokens_path(record))
    if data is None:
        return None
    return "keyring" if isinstance(data, dict) and data.get("storage") == "keyring" else "file"


def _usage(store: Store, record: str, credentials: Credentials) -> dict[str, Any] | None:
    """The rate-limit windows `oauth-hub serve` last saw for this account (None: none recorded)."""
    from .gateway.usage import read_usage

    usage = read_usage(store, record)
    if usage is None or not usage["windows"]:
        return None
    current = {credentials.account.get("account_id"), credentials.account.get("email")} - {None}
    if usage["account"] is not None and current and usage["account"] not in current:
        return None  # recorded for another account that was signed in before
    now = time.time()
    for window in usage["windows"]:
        if "resets_at" in window:
            window["resets_in"] = max(int(window["resets_at"] - now), 0)
            window["resets_at"] = _iso(window["resets_at"])
    return usage


def status(
    name: str | None = None, *, home: str | Path | None = None, refresh: bool = False, limits: bool = False,
    account: str | None = None,
) -> list[dict[str, Any]]:
    """Sign-in state of every account of one provider (or only ``account``), or of every provider.

    One row per account (``account``, ``default``); a provider with none gets one row
    with ``logged_in`` false. With ``refresh``, a sign-in whose token is due is refreshed
    first, so the expiry shown is the one a tool would get; a failed refresh is
    reported in ``error``. With ``limits``, providers that can say how much of the plan
    is left (``account_limits``) are asked, one request per account, into ``limits``.
    """
    store = Store(home)
    if name is not None:
        names = [known_name(name, store)]
    else:
        known = set(plugins.provider_names(store.home))
        left_out = set(plugins.excluded_providers()) - known  # OAUTH_HUB_LOAD_PLUGINS: not shown, as everywhere
        names = sorted((known | set(store.signed_in_providers())) - left_out)
    rows = []
    for n in names:
        accounts = [store.resolve_account(n, account)] if account is not None else store.accounts(n) or [None]
        for acct in accounts:
            refresh_error = _refresh_if_due(n, store, acct) if refresh and acct is not None else None
            row = provider_status(n, store, acct)
            if acct is None:
                row["account"], row["default"] = None, False  # nothing signed in: no account to name
            if refresh_error and not row["error"]:
                row["error"] = refresh_error
            if limits and row["logged_in"] and not row["error"]:
                try:
                    row["limits"] = _live_limits(n, store, acct)
                except OAuthHubError as exc:
                    row["error"] = f"Could not read the account's limits: {exc}"
            rows.append(row)
    return rows


def _live_limits(name: str, store: Store, account: str | None = None) -> dict[str, Any] | None:
    """What the provider's ``account_limits`` hook says now about ``account``; ``None`` when it has none."""
    if name not in plugins.provider_names(store.home):
        return None  # a token file of a provider that is no longer installed
    provider = Provider.load(name, store)
    if not provider.has("account_limits"):
        return None
    from .http import HttpClient

    http = HttpClient(timeout=(5.0, 15.0))  # status must not hang on a slow API
    provider.resolve(http)
    credentials = get_credentials(name, home=store.home, refresh=False, account=account)
    found = provider.call("account_limits", required=False, http=http, credentials=credentials)
    return dict(found) if isinstance(found, dict) else None


def _refresh_if_due(name: str, store: Store, account: str) -> str | None:
    """Refresh a due sign-in as ``get_token`` would (a still-valid token survives a failed refresh)."""
    try:
        if os.path.lexists(store.tokens_path(record_name(name, account))):
            get_credentials(name, home=store.home, account=account)
    except OAuthHubError as exc:
        return str(exc)
    return None


def list_accounts(name: str | None = None, *, home: str | Path | None = None) -> list[dict[str, Any]]:
    """Every stored sign-in (of ``name``): provider, account, email, plan, default, expiry.

    Read from the records as they are (nothing is refreshed, no provider is loaded).
    """
    store = Store(home)
    if name is not None:
        known_name(name, store)
    rows = []
    for provider, account in store.records(name):
        row = provider_status(provider, store, account)
        rows.append({key: row[key] for key in ("provider", "account", "email", "plan", "default", "expires_at",
                                               "expires_in", "account_id", "has_api_key", "storage", "error")})
    return rows


def set_default_account(name: str, account: str, *, home: str | Path | None = None) -> dict[str, Any]:
    """Make ``account`` the one ``name`` uses when none is named; rename both accounts' model entries.

    Returns ``{"provider", "account", "previous", "renamed": {account: count}, "notes"}``.
    """
    store = Store(home)
    known_name(name, store)
    check_account(account)
    if account not in store.accounts(name):
        raise not_signed_in(name, account, store)
    previous = store.default_account(name)
    report: dict[str, Any] = {"provider": name, "account": account, "previous": previous, "renamed": {},
                              "notes": []}
    store.set_default_account(name, account)
    if previous != account:
        report["renamed"] = _rename_model_entries(store, name, [previous, account])
        from .exporters.records import exported

        slots = {row.get("account") for row in exported(name, home=store.home)}
        if slots:
            report["notes"].append(
                f"Tool entries exported for the default {name} account now reach {account}; "
                f"run `oauth-hub export {name} --account {previous}` to give {previous} entries of its own.")
    return report


def _rename_model_entries(store: Store, name: str, accounts: list[str]) -> dict[str, int]:
    """Give each account's entries the prefix its place now calls for (entries of others are left alone)."""
    try:
        provider = Provider.load(name, store)
    except OAuthHubError:
        return {}  # an uninstalled provider: its entries keep their names
    default = store.default_account(name)
    source = provider.settings["oauth_source"]
    renamed: dict[str, int] = {}
    for account in dict.fromkeys(accounts):
        path = store.models_path(record_name(name, account))
        try:
            entries = read_json(path)
        except CorruptFileError:
            continue
        if not isinstance(entries, dict):
            continue
        wanted = account_prefix(provider.settings, account, account == default)
        # Longest first: "chatgpt-work-" before "chatgpt-".
        known = (account_prefix(provider.settings, account, False), account_prefix(provider.settings, account, True))
        updated: dict[str, Any] = {}
        count = 0
        for key, entry in entries.items():
            new_key = key
            if isinstance(entry, dict) and entry.get("oauth_source") == source:
                old = next((p for p in known if key.startswith(p)), None)
                if old is not None:
                    new_key = wanted + key[len(old):]
            count += new_key != key
            updated[new_key] = entry
        if count:
            write_json(path, updated)
            renamed[account] = count
    return renamed


def logout(name: str, *, home: str | Path | None = None, http: Any = None, account: str | None = None
           ) -> dict[str, Any]:
    """Revoke (best effort), delete the account's record, remove its model entries and exports.

    ``account``: which of the provider's accounts (default: ``$OAUTH_HUB_ACCOUNT``, else
    the default one). Only that account's files and exports go; when it was the
    default, the first remaining account becomes the default. Idempotent: logging out
    twice reports that there was nothing to do.
    """
    from .http import HttpClient
    from .login import remove_model_entries

    store = Store(home)
    known_name(name, store)
    account = store.resolve_account(name, account)
    record = record_name(name, account)
    was_default = account == store.default_account(name)
    report: dict[str, Any] = {"provider": name, "account": account, "was_logged_in": False, "revoked": None,
                              "revoke_error": None, "revoke_hint": None, "removed_models": [], "new_default": None,
                              "notes": []}
    tokens_path = store.tokens_path(record)
    # Under the record's lock: a refresh running in another process must not write the
    # token file back after logout deleted it.
    with record_lock(store, record):
        try:
            credentials = load_credentials(name, store, account)
        except CorruptFileError:
            credentials = None
            report["notes"].append(f"{tokens_path} was unreadable, so nothing could be revoked; it was removed.")
        except OAuthHubError as exc:  # a keyring that cannot be read: the local copy still goes
            credentials = None
            report["notes"].append(f"{exc} Nothing could be revoked; the local record was removed.")
        provider: Provider | None
        try:
            provider = Provider.load(name, store)
        except OAuthHubError as exc:
            provider = None
            report["notes"].append(f"Provider could not be loaded ({exc}); local files removed only.")
        newest = pending_refresh_token(store, record)  # an unfinished refresh holds the live refresh token
        if credentials is not None and newest:
            credentials.refresh_token = newest
        if credentials is not None and provider is not None and credentials.refresh_token:
            http = http or HttpClient()
            try:
                provider.resolve(http)
                report["revoked"] = bool(provider.call("revoke_tokens", required=False, http=http,
                                                       credentials=credentials))
            except OAuthHubError as exc:
                report["revoked"] = False
                report["revoke_error"] = str(exc)
        if credentials is not None and provider is not None and not report["revoked"]:
            # No revocation API (or it failed): say where the person can revoke it by hand.
            hint = provider.call("revocation_hint", required=False, credentials=credentials)
            report["revoke_hint"] = str(hint) if hint else None
        if delete_record(store, name, account):
            report["was_logged_in"] = credentials is not None
        discard_reservations(store, record)
        if discard_pending(store, record):
            report["notes"].append(f"Deleted {store.pending_path(record).name}, an unfinished refresh.")
        # Unreadable token files a login set aside may still hold refresh tokens.
        for kept in sorted(store.home.glob(f"{tokens_path.name}.corrupt-*")) if store.home.is_dir() else []:
            remove_file(kept)
            report["notes"].append(f"Deleted {kept.name}, an unreadable token file kept by an earlier login.")
    source = provider.settings["oauth_source"] if provider else f"oauth-hub:{name}"
    try:
        report["removed_models"] = remove_model_entries(store.models_path(record), source)
    except CorruptFileError as exc:
        report["notes"].append(str(exc))
    from .gateway.usage import usage_path

    usage_path(store, record).unlink(missing_ok=True)
    # -- issue 8: take out of other tools' files exactly what `oauth-hub export` wrote ----
    # (this account's own exports, and those of the default slot when it was the default)
    from .exporters import remove_exports

    exports = remove_exports(name, home=store.home, account=account, default=was_default)
    report["removed_exports"] = exports["removed"]
    report["notes"].extend(exports["notes"])
    # -- end issue 8 ----------------------------------------------------------------------
    remaining = store.accounts(name)
    report["accounts"] = remaining  # what is left: a mistyped name gets the list to choose from
    if was_default and remaining:
        report["new_default"] = remaining[0]
        store.set_default_account(name, remaining[0])
        _rename_model_entries(store, name, [remaining[0]])
        report["notes"].append(f"{remaining[0]} is now the default {name} account "
                               f"(`oauth-hub accounts default {name} NAME` to choose another).")
    elif was_default and store.index_path().exists():
        store.set_default_account(name, None)
    return report
