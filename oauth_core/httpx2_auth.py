"""``httpx2`` authentication backed by a stored sign-in, for ``httpx2.Client`` and ``httpx2.AsyncClient``.

::

    import httpx2
    from oauth_core.httpx2_auth import OAuthHubHttpx2Auth

    client = httpx2.Client(auth=OAuthHubHttpx2Auth("chatgpt"))

Vendor SDKs built on ``httpx2`` take such a client as ``http_client`` (see the README).
Each request gets the provider's credentials, refreshed when due; a 401 refreshes once
and retries once (:mod:`oauth_core.authflow` has the rules, shared with the
``requests`` auth and the ``httpx`` one). ``httpx2`` is imported by this module only.
"""

from __future__ import annotations

import httpx2

from .authflow import SignInAuth

__all__ = ["OAuthHubHttpx2Auth"]


class OAuthHubHttpx2Auth(SignInAuth, httpx2.Auth):
    """Bearer (or the provider's own) auth from oauth-hub's store, with one refresh-and-retry on 401.

    ``OAuthHubHttpx2Auth(provider, home=None, use_api_key=None)``: see :class:`~oauth_core.authflow.SignInAuth`.
    """
