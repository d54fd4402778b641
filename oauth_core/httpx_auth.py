"""``httpx`` authentication backed by a stored sign-in, for ``httpx.Client`` and ``httpx.AsyncClient``.

::

    import httpx
    from oauth_core.httpx_auth import OAuthHubHttpxAuth

    client = httpx.Client(auth=OAuthHubHttpxAuth("chatgpt"))

Vendor SDKs built on ``httpx`` take such a client as ``http_client`` (see the README).
Each request gets the provider's credentials, refreshed when due; a 401 refreshes once
and retries once (:mod:`oauth_core.authflow` has the rules, shared with the
``requests`` auth and the ``httpx2`` one). ``httpx`` is imported by this module only.
"""

from __future__ import annotations

import httpx

from .authflow import SignInAuth

__all__ = ["OAuthHubHttpxAuth"]


class OAuthHubHttpxAuth(SignInAuth, httpx.Auth):
    """Bearer (or the provider's own) auth from oauth-hub's store, with one refresh-and-retry on 401.

    ``OAuthHubHttpxAuth(provider, home=None, use_api_key=None)``: see :class:`~oauth_core.authflow.SignInAuth`.
    """
