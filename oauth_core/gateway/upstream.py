"""Where tools point (the local base URL) and where a provider's requests go (its upstream base).

Light on purpose: :mod:`oauth_core.serve` and the exporters use these without loading
the server (aiohttp).
"""

from __future__ import annotations

from typing import Any

from ..credentials import Credentials
from ..errors import OAuthHubError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4141  # fixed by default, so the base URLs written by `oauth-hub export` stay valid


def local_base_url(port: int = DEFAULT_PORT, host: str = DEFAULT_HOST) -> str:
    """``http://127.0.0.1:PORT``: what tools are pointed at."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def upstream_base(provider: Any, credentials: Credentials, store: Any = None) -> str:
    """The base URL that API calls made with ``credentials`` go to, without a trailing slash.

    The provider's ``api_base(settings, credentials)`` hook decides (ChatGPT: the
    platform API with an API key, the ChatGPT backend with a subscription); without it,
    the ``api_base`` setting. ``/<provider>/<rest>`` is forwarded to ``<base>/<rest>``,
    and the gateway's dialect paths (``gateway_backend``) are relative to it.
    """
    base = provider.call("api_base", required=False, credentials=credentials) or provider.settings.get("api_base")
    if not isinstance(base, str) or not base:
        raise OAuthHubError(f"Provider {provider.name!r} declares no api_base setting, so there is nowhere to "
                            f"send its requests. Set one with `oauth-hub config set {provider.name}.api_base URL`.")
    return base.rstrip("/")
