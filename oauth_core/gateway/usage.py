"""The subscription's usage windows, as the backend last reported them, kept per account.

Subscription backends report how much of each rate-limit window is used in the
headers of every answer. A provider's ``gateway_rate_limits`` hook reads them into
windows::

    {"name": "primary", "used_percent": 12.0, "window_minutes": 300, "resets_at": 1767225600}

and the gateway keeps the latest in ``<home>/<provider>_usage.json`` (0600, written
atomically, only when a figure changed, off the event loop), with the account it
belongs to and when it was seen, for ``oauth-hub status``.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import OAuthHubError
from ..store import Store, read_json, write_json


def usage_path(store: Store, provider: str) -> Path:
    return store.home / f"{provider}_usage.json"


def clean_windows(raw: Any) -> list[dict[str, Any]]:
    """Keep well-formed windows only: a name and a used percentage, the rest optional."""
    windows = []
    for item in raw or []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        used = item.get("used_percent")
        if not isinstance(used, (int, float)) or isinstance(used, bool):
            continue
        window: dict[str, Any] = {"name": item["name"], "used_percent": float(used)}
        for key in ("window_minutes", "resets_at"):
            value = item.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                window[key] = int(value)
        windows.append(window)
    return windows


class UsageRecorder:
    """Remembers the last windows per provider and writes a file when they change."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._last: dict[str, tuple[Any, ...]] = {}
        self._lock = threading.Lock()

    def changed(self, provider: str, account: str | None, windows: list[dict[str, Any]]) -> bool:
        """True (and remembered) when these figures differ from the last ones seen."""
        key = (account, tuple(tuple(sorted(w.items())) for w in windows))
        with self._lock:
            if self._last.get(provider) == key:
                return False
            self._last[provider] = key
            return True

    def write(self, provider: str, account: str | None, windows: list[dict[str, Any]]) -> None:
        record = {"provider": provider, "account": account,
                  "seen_at": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
                  "windows": windows}
        try:
            self.store.ensure()
            write_json(usage_path(self.store, provider), record)
        except (OSError, OAuthHubError):
            with self._lock:
                self._last.pop(provider, None)  # try again with the next answer


def read_usage(store: Store, provider: str) -> dict[str, Any] | None:
    """The last recorded usage of ``provider`` (None when none was recorded or the file is unreadable)."""
    try:
        data = read_json(usage_path(store, provider))
    except OAuthHubError:
        return None
    if not isinstance(data, dict):
        return None
    return {"account": data.get("account") if isinstance(data.get("account"), str) else None,
            "seen_at": data.get("seen_at") if isinstance(data.get("seen_at"), str) else None,
            "windows": clean_windows(data.get("windows"))}
