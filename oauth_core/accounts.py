"""Showing and ending sign-ins: status and logout.

``status`` never imports a provider: everything it shows was stored at login
(``credentials.account``), so it costs a file read. The token record itself is read,
refreshed and deleted through :mod:`oauth_core.tokens`, its only owner (``known_name``
and ``load_credentials`` are re-exported here for older imports).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import plugins
from .credentials import Credentials, parse_iso
from .errors import CorruptFileError, OAuthHubError
from .provider import Provider
from .store import Store, read_json
from .tokens import known_name, load_credentials, needs_refresh, record_lock, refresh_credentials

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
                           "models": [], "usage": None, "limits": None, "tokens_path": str(store.tokens_path(name)),
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
    name: str | None = None, *, home: str | Path | None = None, refresh: bool = False, limits: bool = False
) -> list[dict[str, Any]]:
    """Sign-in state of one provider, or of every installed or signed-in one.

    With ``refresh``, a sign-in whose token is due is refreshed first, so the expiry
    shown is the one a tool would get; a failed refresh is reported in ``error``. With
    ``limits``, providers that can say how much of the plan is left (``account_limits``)
    are asked, one request each, into ``limits``.
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
        if limits and row["logged_in"] and not row["error"]:
            try:
                row["limits"] = _live_limits(n, store)
            except OAuthHubError as exc:
                row["error"] = f"Could not read the account's limits: {exc}"
        rows.append(row)
    return rows


def _live_limits(name: str, store: Store) -> dict[str, Any] | None:
    """What the provider's ``account_limits`` hook says now; ``None`` when it has none."""
    from .tokens import get_credentials

    if name not in plugins.provider_names(store.home):
        return None  # a token file of a provider that is no longer installed
    provider = Provider.load(name, store)
    if not provider.has("account_limits"):
        return None
    from .http import HttpClient

    http = HttpClient(timeout=(5.0, 15.0))  # status must not hang on a slow API
    provider.resolve(http)
    credentials = get_credentials(name, home=store.home, refresh=False)
    found = provider.call("account_limits", required=False, http=http, credentials=credentials)
    return dict(found) if isinstance(found, dict) else None


def _refresh_if_due(name: str, store: Store) -> str | None:
    try:
        credentials = load_credentials(name, store)
        if credentials is not None and needs_refresh(credentials):
            refresh_credentials(name, home=store.home, stale_token=credentials.access_token)
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
                              "revoke_error": None, "revoke_hint": None, "removed_models": [], "notes": []}
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
        if tokens_path.exists():
            report["was_logged_in"] = credentials is not None
            try:
                tokens_path.unlink()
            except OSError as exc:
                raise OAuthHubError(f"Cannot delete {tokens_path}: {exc.strerror or exc}.") from None
        # Unreadable token files a login set aside may still hold refresh tokens.
        for kept in sorted(store.home.glob(f"{tokens_path.name}.corrupt-*")) if store.home.is_dir() else []:
            kept.unlink(missing_ok=True)
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
