"""Errors that reach a person.

Every error the engine raises is an :class:`OAuthHubError` whose message is one line a
person can act on: what went wrong and what to run next. The CLI prints ``str(error)``
and exits non-zero; an embedding tool can do the same. Messages never carry a token:
they are built from our own words plus error *codes* and descriptions the identity
provider sent, which are scrubbed of anything token-shaped (see :func:`scrub`).
"""

from __future__ import annotations

import re

# A JWT (three base64url segments) or any long run of token-ish characters. IdP error
# descriptions are echoed to people, and a careless IdP could quote a token back.
_TOKEN_SHAPED = re.compile(r"[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]*|[A-Za-z0-9_\-]{32,}")


__all__ = ["ConfigError", "CorruptFileError", "IdPError", "LoginCancelled", "LoginError", "LoginTimeout",
           "NetworkError", "NotLoggedIn", "OAuthHubError", "PluginNotice", "PortBusy", "ProviderLoadError",
           "ProviderNotFound", "SecurityNotice", "SignInEnded", "notify", "scrub"]


def scrub(text: str, limit: int = 300) -> str:
    """Make untrusted text safe to show on one line: no tokens, no newlines, bounded."""
    text = _TOKEN_SHAPED.sub(lambda m: m.group(0)[:6] + "…", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class SecurityNotice(UserWarning):
    """Something about the person's files was fixed for safety (e.g. loose permissions).

    Issued with :func:`warnings.warn`, so an embedding tool sees an ordinary Python
    warning and the CLI prints it as a "Note:" line on stderr.
    """


class PluginNotice(UserWarning):
    """Something about the installed plugins a person should know, e.g. a name in
    ``OAUTH_HUB_LOAD_PLUGINS`` that matches nothing. The CLI prints it as a "Note:" line."""


def notify(message: str) -> None:
    """Tell the person about a :class:`SecurityNotice` without interrupting anything."""
    import warnings

    warnings.warn(message, SecurityNotice, stacklevel=3)


class OAuthHubError(Exception):
    """Base class: a one-line message meant for a person."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(scrub(message, limit=1000))


class ProviderNotFound(OAuthHubError):
    """The name matches no installed provider."""


class ProviderLoadError(OAuthHubError):
    """A provider plugin is installed but could not be imported or registered."""


class NotLoggedIn(OAuthHubError):
    """No token file for the provider."""


class CorruptFileError(OAuthHubError):
    """A file of ours exists but cannot be parsed; it is left exactly as it is."""


class ConfigError(OAuthHubError):
    """config.toml is unreadable or a setting has the wrong type."""


class LoginError(OAuthHubError):
    """The browser sign-in did not produce a usable authorization code."""


class LoginTimeout(LoginError):
    """Nobody completed the sign-in before the callback server gave up."""


class LoginCancelled(LoginError):
    """The login was cancelled (Ctrl+C, or a newer login sent ``/cancel``)."""

    exit_code = 130


class PortBusy(LoginError):
    """Every port the provider accepts for its redirect URI is taken."""


class NetworkError(OAuthHubError):
    """The provider could not be reached at all (DNS, refused, TLS, timeout)."""


class IdPError(OAuthHubError):
    """The identity provider or API answered with an error.

    ``code`` holds the machine-readable error code (``invalid_grant``,
    ``refresh_token_reused`` …) so callers can branch on it without parsing text.
    """

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class BadAnswer(IdPError):
    """The server said "OK" but sent something unusable: not JSON, too large, or a token answer without a token.

    Nothing is written or reused because of it. A refresh that gets one keeps using the
    current access token while it is still valid (the server may be having a bad minute).
    """


class SignInEnded(OAuthHubError):
    """The refresh token can no longer be used: the person must log in again."""
