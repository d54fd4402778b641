"""Showing and ending sign-ins: status and logout.

``status`` never imports a provider: everything it shows was stored at login
(``credentials.account``), so it costs a file read. The token record itself is read,
refreshed and deleted through :mod:`oauth_core.tokens`, its only owner (``known_name``
and ``load_credentials`` are re-exported here for older imports).
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
from .provider import Provider
from .store import Store, read_json, remove_file
from .tokens import (
    discard_pending,
    discard_reservations,
    get_credentials,
    known_name,
    load_credentials,
    pending_refresh_token,
    record_lock,
)

__all__ = ["known_name", "load_credentials", "logout", "provider_status", "status"]


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def provider_status(name: str, store: Store) -> dict[str, Any]:
    """One provider's sign-in state as a JSON-ready dict."""
    row: dict[str, Any] = {"provider": name, "logged_in": False, "email": None, "plan": None,
                           "account_id": None, "has_api_key": False, "api_key_age_days": None,
                           "expires_at": None, "expires_in": None, "can_refresh": False, "last_refresh": None,
                           "models": [], "usage": None, "tokens_path": str(store.tokens_path(name)),
                           "error": None}
    try:
        credentials = load_credentials(name, store)
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
        models = read_json(store.models_path(name))
    except OAuthHubError as exc:
        row["error"] = str(exc)
        models = None
    row["models"] = sorted(models) if isinstance(models, dict) else []
    row["usage"] = _usage(store, name, credentials)
    return row


def _usage(store: Store, name: str, credentials: Credentials) -> dict[str, Any] | None:
    """The rate-limit windows `oauth-hub serve` last saw for this account (None: none recorded)."""
    from .gateway.usage import read_usage

    usage = read_usage(store, name)
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
    name: str | None = None, *, home: str | Path | None = None, refresh: bool = False
) -> list[dict[str, Any]]:
    """Sign-in state of one provider, or of every installed or signed-in one.

    With ``refresh``, a sign-in whose token is due is refreshed first, so the expiry
    shown is the one a tool would get; a failed refresh is reported in ``error``.
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
        refresh_error = _refresh_if_due(n, store) if refresh else None
        row = provider_status(n, store)
        if refresh_error and not row["error"]:
            row["error"] = refresh_error
        rows.append(row)
    return rows


def _refresh_if_due(name: str, store: Store) -> str | None:
    """Refresh a due sign-in as ``get_token`` would (a still-valid token survives a failed refresh)."""
    try:
        if os.path.lexists(store.tokens_path(name)):
            get_credentials(name, home=store.home)
    except OAuthHubError as exc:
        return str(exc)
    return None


def logout(name: str, *, home: str | Path | None = None, http: Any = None) -> dict[str, Any]:
    """Revoke (best effort), delete the token file, remove this provider's model entries.

    Idempotent: logging out twice reports that there was nothing to do.
    """
    from .http import HttpClient
    from .login import remove_model_entries

    store = Store(home)
    known_name(name, store)
    report: dict[str, Any] = {"provider": name, "was_logged_in": False, "revoked": None,
                              "revoke_error": None, "removed_models": [], "notes": []}
    tokens_path = store.tokens_path(name)
    # Under the record's lock: a refresh running in another process must not write the
    # token file back after logout deleted it.
    with record_lock(store, name):
        try:
            credentials = load_credentials(name, store)
        except CorruptFileError:
            credentials = None
            report["notes"].append(f"{tokens_path} was unreadable, so nothing could be revoked; it was removed.")
        provider: Provider | None
        try:
            provider = Provider.load(name, store)
        except OAuthHubError as exc:
            provider = None
            report["notes"].append(f"Provider could not be loaded ({exc}); local files removed only.")
        newest = pending_refresh_token(store, name)  # an unfinished refresh holds the live refresh token
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
        if remove_file(tokens_path):
            report["was_logged_in"] = credentials is not None
        discard_reservations(store, name)
        if discard_pending(store, name):
            report["notes"].append(f"Deleted {store.pending_path(name).name}, an unfinished refresh.")
        # Unreadable token files a login set aside may still hold refresh tokens.
        for kept in sorted(store.home.glob(f"{tokens_path.name}.corrupt-*")) if store.home.is_dir() else []:
            remove_file(kept)
            report["notes"].append(f"Deleted {kept.name}, an unreadable token file kept by an earlier login.")
    source = provider.settings["oauth_source"] if provider else f"oauth-hub:{name}"
    try:
        report["removed_models"] = remove_model_entries(store.models_path(name), source)
    except CorruptFileError as exc:
        report["notes"].append(str(exc))
    # -- issue 8: take out of other tools' files exactly what `oauth-hub export` wrote ----
    from .exporters import remove_exports

    exports = remove_exports(name, home=store.home)
    report["removed_exports"] = exports["removed"]
    report["notes"].extend(exports["notes"])
    # -- end issue 8 ----------------------------------------------------------------------
    return report
