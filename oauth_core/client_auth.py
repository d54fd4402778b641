"""OAuth 2.0 client authentication for token, revocation and device-code requests.

A public client (a CLI, the usual case) sends only its ``client_id``. A *confidential*
client also proves it holds a ``client_secret``, in one of two ways that RFC 6749
§2.3.1 defines and OpenID Connect names (``token_endpoint_auth_method``):

- ``client_secret_basic``: an ``Authorization: Basic`` header. The id and the secret
  are each **form-urlencoded first** (RFC 6749 Appendix B, so a space becomes ``+`` and
  ``:`` becomes ``%3A``), then joined with ``:`` and base64-encoded. Hand-written
  versions usually skip the encoding and break on secrets with ``:`` or ``%`` in them.
- ``client_secret_post``: ``client_id`` and ``client_secret`` in the form body.

Providers read two settings: ``client_secret`` (always treated as secret: masked by
``oauth-hub config show``) and ``token_endpoint_auth_method`` (``none``,
``client_secret_basic`` or ``client_secret_post``; empty means: ``none`` without a
secret, otherwise ``client_secret_basic``, the method every server must support, unless
the server's ``token_endpoint_auth_methods_supported`` setting, e.g. from discovery,
lists only ``client_secret_post``). In a hook::

    from oauth_core.client_auth import authenticate_client

    http.post(settings["token_url"], what="token refresh",
              **authenticate_client(settings, {"grant_type": "refresh_token", "refresh_token": rt}))
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus

from .errors import ConfigError

NONE = "none"
BASIC = "client_secret_basic"
POST = "client_secret_post"
METHODS = (NONE, BASIC, POST)
METHOD_SETTING = "token_endpoint_auth_method"
SECRET_SETTING = "client_secret"  # noqa: S105 - the setting's name, not a secret
SUPPORTED_SETTING = "token_endpoint_auth_methods_supported"

__all__ = ["BASIC", "METHODS", "NONE", "POST", "authenticate_client", "basic_authorization", "client_auth_method"]


def basic_authorization(client_id: str, client_secret: str) -> str:
    """The ``Authorization`` header value for ``client_secret_basic`` (RFC 6749 §2.3.1)."""
    pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


def client_auth_method(settings: Mapping[str, Any]) -> str:
    """The method a request authenticates with, from the settings (see the module docstring)."""
    name = settings.get("name", "the provider")
    method = str(settings.get(METHOD_SETTING) or "").strip()
    secret = settings.get(SECRET_SETTING) or ""
    if not method:
        if not secret:
            return NONE
        supported = settings.get(SUPPORTED_SETTING)
        if isinstance(supported, list) and supported and BASIC not in supported and POST in supported:
            return POST
        return BASIC
    if method not in METHODS:
        raise ConfigError(f"{name}: {METHOD_SETTING} {method!r} is not one of {', '.join(METHODS)}. "
                          f"Fix it with `oauth-hub config set {name}.{METHOD_SETTING} {BASIC}`.")
    if method != NONE and not secret:
        raise ConfigError(f"{name} authenticates with {method} but has no client secret. Set it with "
                          f"`oauth-hub config set {name}.{SECRET_SETTING} -` (the secret is read from stdin).")
    return method


def authenticate_client(
    settings: Mapping[str, Any], form: Mapping[str, str], headers: Mapping[str, str] | None = None
) -> dict[str, dict[str, str]]:
    """``form`` and ``headers`` for a request to the token endpoint, with the client authenticated.

    Returns ``{"form": …, "headers": …}``, ready to pass to ``http.post(url, **…)``.
    ``settings["client_id"]`` is the client; the method and secret come from
    :func:`client_auth_method`. A ``client_id`` or ``client_secret`` already in ``form``
    is replaced, so each request uses exactly one method (RFC 6749 §2.3).
    """
    client_id = str(settings.get("client_id") or "")
    if not client_id:
        raise ConfigError(f"{settings.get('name', 'The provider')} has no client_id setting.")
    method = client_auth_method(settings)
    body = {k: v for k, v in form.items() if k not in ("client_id", SECRET_SETTING)}
    extra = dict(headers or {})
    if method == BASIC:
        extra["Authorization"] = basic_authorization(client_id, str(settings[SECRET_SETTING]))
    else:
        body["client_id"] = client_id
        if method == POST:
            body[SECRET_SETTING] = str(settings[SECRET_SETTING])
    return {"form": body, "headers": extra}
