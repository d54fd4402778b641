"""oauth-hub's engine: sign in once, hand every agent tool a valid token.

The public API is imported lazily (PEP 562) so that ``import oauth_core`` stays cheap
for tools that only need a token::

    from oauth_core import get_token, OAuthHubAuth, login, status, logout

``OAuthHubHttpxAuth`` / ``OAuthHubHttpx2Auth`` import ``httpx`` / ``httpx2`` when first
used, so neither is a dependency of oauth-hub itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "login": "oauth_core.login",
    "LoginUI": "oauth_core.login",
    "LoginResult": "oauth_core.login",
    "status": "oauth_core.accounts",
    "logout": "oauth_core.accounts",
    "list_accounts": "oauth_core.accounts",
    "set_default_account": "oauth_core.accounts",
    "import_sign_in": "oauth_core.importing",
    "Credentials": "oauth_core.credentials",
    "OAuthHubError": "oauth_core.errors",
    "IdPError": "oauth_core.errors",
    "NetworkError": "oauth_core.errors",
    "LoginError": "oauth_core.errors",
    "SignInEnded": "oauth_core.errors",
    "authenticate_client": "oauth_core.client_auth",
    "safe_payload": "oauth_core.claims",
    "auth_headers": "oauth_core.tokens",
    "hookimpl": "oauth_core.hookspecs",
    "register_provider": "oauth_core.plugins",
    "unregister_provider": "oauth_core.plugins",
    "provider_names": "oauth_core.plugins",
    "get_token": "oauth_core.tokens",
    "get_api_key": "oauth_core.tokens",
    "get_credentials": "oauth_core.tokens",
    "get_environment": "oauth_core.tokens",
    "refresh_credentials": "oauth_core.tokens",
    "OAuthHubAuth": "oauth_core.auth",
    "OAuthHubHttpxAuth": "oauth_core.httpx_auth",
    "OAuthHubHttpx2Auth": "oauth_core.httpx2_auth",
}

__all__ = [
    "Credentials", "IdPError", "LoginError", "LoginResult", "LoginUI", "NetworkError", "OAuthHubAuth",
    "OAuthHubError", "OAuthHubHttpx2Auth", "OAuthHubHttpxAuth", "SignInEnded", "auth_headers",
    "authenticate_client", "get_api_key", "get_credentials", "get_environment", "get_token", "hookimpl",
    "import_sign_in", "list_accounts", "login", "logout", "provider_names", "refresh_credentials",
    "register_provider", "safe_payload", "set_default_account", "status", "unregister_provider",
]

if TYPE_CHECKING:  # pragma: no cover
    from .accounts import list_accounts, logout, set_default_account, status
    from .auth import OAuthHubAuth
    from .claims import safe_payload
    from .client_auth import authenticate_client
    from .credentials import Credentials
    from .errors import IdPError, LoginError, NetworkError, OAuthHubError, SignInEnded
    from .hookspecs import hookimpl
    from .httpx2_auth import OAuthHubHttpx2Auth
    from .httpx_auth import OAuthHubHttpxAuth
    from .importing import import_sign_in
    from .login import LoginResult, LoginUI, login
    from .plugins import provider_names, register_provider, unregister_provider
    from .tokens import auth_headers, get_api_key, get_credentials, get_environment, get_token, refresh_credentials


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'oauth_core' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
