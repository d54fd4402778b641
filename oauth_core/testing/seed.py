"""Writing a sign-in straight into a home, for tests that start after the browser step.

A provider author's refresh or API tests need a stored sign-in but not a browser:
take a token answer from a fake (``FakeOpenAI.mint_tokens()``) and store it exactly as
a login would (same labelling by ``describe_account``, same private atomic write).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from oauth_core.credentials import Credentials
from oauth_core.provider import Provider
from oauth_core.store import Store
from oauth_core.tokens import save_credentials

__all__ = ["seed_sign_in"]


def seed_sign_in(provider: str, answer: dict[str, Any], *, home: str | Path | None = None,
                 account: str = "main", **fields: Any) -> Credentials:
    """Store ``answer`` as provider's sign-in; ``fields`` override Credentials attributes.

    For example ``seed_sign_in("chatgpt", fake.mint_tokens(expires_in=-10), home=h)``
    stores an already-expired access token, and ``last_refresh="2020-01-01T00:00:00Z"``
    an old one; ``account="work"`` stores it as the account ``work`` (the provider's
    first account becomes its default, as with a login). A negative or zero
    ``expires_in`` is stored as an expiry in the past even
    for opaque (non-JWT) tokens: a login ignores such a value from a real server, but a
    test asks for it on purpose.
    """
    store = Store(home)
    credentials = Provider.load(provider, store).credentials_from(answer)
    credentials.account_name = account
    past = _seconds(answer.get("expires_in"))
    if past is not None and past <= 0:
        credentials.expires_at = time.time() + past
    for name, value in fields.items():
        if not hasattr(credentials, name):
            raise TypeError(f"Credentials has no field {name!r}")
        setattr(credentials, name, value)
    store.ensure()
    first = not store.records(provider)
    save_credentials(store, credentials)
    if first:
        store.set_default_account(provider, account)
    return credentials


def _seconds(value: Any) -> float | None:
    """``expires_in`` as a finite number of seconds (servers send numbers or numeric strings)."""
    try:
        seconds = float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) else None
