"""Test doubles for oauth-hub: fake identity providers and a scripted browser.

Nothing heavy is imported here: the fakes pull in ``http.server``, ``jwt`` and
``cryptography``, which production code paths never need. Import the
submodules directly (``from oauth_core.testing.fake_openai import FakeOpenAI``),
or use the lazy attributes below.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FakeAnthropic", "FakeOIDC", "FakeOpenAI", "RecordedRequest", "SigningKey", "follow", "seed_sign_in"]

_LAZY = {
    "FakeAnthropic": "oauth_core.testing.fake_anthropic",
    "FakeOIDC": "oauth_core.testing.fake_oidc",
    "seed_sign_in": "oauth_core.testing.seed",
    "FakeOpenAI": "oauth_core.testing.fake_openai",
    "RecordedRequest": "oauth_core.testing.fake_openai",
    "SigningKey": "oauth_core.testing.jwt_keys",
    "follow": "oauth_core.testing.browser",
}


def __getattr__(name: str) -> Any:
    """Import the fake on first use so ``import oauth_core.testing`` stays cheap."""
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
