"""The hooks a provider implements.

Each provider gets a plugin manager of its own (see :mod:`oauth_core.plugins`), so every
hook here is ``firstresult=True``: the provider's module answers, and a cross-provider
extension registered in front of it could answer first. A hook implementation may
accept any subset of the arguments listed, by name, as pluggy allows.

Common arguments:

``settings``
    The provider's defaults (from :func:`provider_defaults`) with the person's
    ``[providers.NAME]`` table from ``config.toml`` applied, plus ``name``.
``http``
    An :class:`oauth_core.http.HttpClient`: one shared ``requests`` session whose
    errors arrive as one-line :class:`oauth_core.errors.OAuthHubError`\\ s. Use it
    rather than a session of your own, so proxies, CA bundles and timeouts are uniform.
``credentials``
    The :class:`oauth_core.credentials.Credentials` of the sign-in.

The full reference, with an example per hook, is ``docs/hooks.md``; a test fails when a
hook here is missing from it.
"""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT = "oauth_hub"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = ["PROJECT", "hookimpl", "hookspec"]


@hookspec(firstresult=True)
def provider_defaults() -> dict[str, Any]:
    """The provider's settings before ``config.toml`` is applied.

    The engine reads: ``port`` (int), ``fallback_ports`` (list of int, the other ports
    registered with the provider, in order), ``callback_path`` (e.g. ``/auth/callback``),
    ``redirect_host`` (``127.0.0.1`` or ``localhost``: the host written in the redirect
    URI; the server always binds 127.0.0.1), ``callback_timeout`` (seconds), ``prefix``
    (model entry names start with it), ``oauth_source`` (marks the model entries this
    provider owns), ``description``. Anything else is the provider's own.
    """


@hookspec(firstresult=True)
def resolve_settings(settings: dict[str, Any], http: Any) -> dict[str, Any]:
    """Settings that can only be known at run time, e.g. endpoints from OIDC discovery.

    Called once per command, before the first hook that talks to the provider (login,
    refresh, logout, ID-token verification). Return the settings to add or override
    (``jwks_uri``, endpoints, ``require_iss``…), or ``None``. Raise
    :class:`oauth_core.errors.OAuthHubError` when the provider cannot be used.
    """


@hookspec(firstresult=True)
def sign_in_variants(settings: dict[str, Any]) -> list[dict[str, str]]:
    """The kinds of sign-in the provider offers, when it offers more than one.

    Some providers sign different kinds of account in at different places (a
    subscription and an API-billing console, say). Return a list of dicts with
    ``name`` (a short slug: what ``oauth-hub login NAME --variant`` takes) and
    ``title`` (what the person is asked to choose), optionally ``description``; the
    first is the default. The engine asks the person (on a terminal) or takes the
    default, then puts the chosen name in ``settings["variant"]`` for every hook of
    that login (``build_auth_url``, ``exchange_code``, ``describe_account``…).
    Return ``None`` or ``[]`` when there is only one kind.
    """


@hookspec(firstresult=True)
def build_auth_url(
    settings: dict[str, Any], redirect_uri: str, state: str, code_challenge: str, nonce: str
) -> str:
    """The authorization URL the browser opens. Must use S256 with ``code_challenge``.

    ``nonce`` is a fresh random value; an OpenID Connect provider sends it and sets the
    ``nonce`` setting, and the engine then requires it in the ID token. Others ignore it.
    """


@hookspec(firstresult=True)
def exchange_code(
    settings: dict[str, Any], http: Any, code: str, redirect_uri: str, code_verifier: str, state: str
) -> dict[str, Any]:
    """Trade the authorization code for tokens.

    Return the token endpoint's answer as a dict with at least ``access_token`` and
    usually ``refresh_token``, ``id_token``, ``expires_in``.
    """


@hookspec(firstresult=True)
def describe_account(settings: dict[str, Any], credentials: Any, answer: dict[str, Any] | None) -> dict[str, Any]:
    """Identity facts for ``status`` and for later hooks.

    ``answer`` is the token endpoint's latest answer (code exchange or refresh), for
    providers that put the identity there rather than in an ID token; ``None`` when
    there is none. Conventional keys: ``email``, ``plan``, ``account_id``,
    ``organization_id``, ``project_id``. The dict is stored as ``credentials.account``
    after the code exchange and after each refresh (``credentials.account`` still holds
    the previous one, to merge with), so ``status`` never has to import the provider.
    """


@hookspec(firstresult=True)
def refusal_advice(settings: dict[str, Any], error: str) -> str | None:
    """What to change when the provider refused the sign-in with the OAuth ``error`` code.

    Called when the callback carries ``error`` (e.g. ``invalid_scope``), or the code
    exchange is refused with one. Return a sentence naming the setting or command that
    fixes it; it is added to the error shown in the terminal and on the browser page.
    ``None``: the engine's message alone.
    """


@hookspec(firstresult=True)
def account_profile(settings: dict[str, Any], http: Any, credentials: Any) -> dict[str, Any] | None:
    """Identity facts that take a request (a profile or userinfo endpoint), at login.

    Called once, after the code exchange and before ``obtain_api_key``, with the new
    credentials (``credentials.account`` holds what ``describe_account`` found). The
    dict returned is merged over ``credentials.account`` and stored, so ``status``
    can show it without a request (e.g. ``plan``). Best effort: raise
    :class:`oauth_core.errors.OAuthHubError` and the login goes on with a warning.
    """


@hookspec(firstresult=True)
def account_limits(settings: dict[str, Any], http: Any, credentials: Any) -> dict[str, Any] | None:
    """The plan's limits as they stand now (quotas left, credit, spending caps), for ``status``.

    Called by ``oauth-hub status`` for a signed-in provider, with fresh credentials, each
    time (what is left changes with every request, so it is not stored). Return a
    JSON-ready dict, shown as ``limits`` in ``status --json``; a ``summary`` key, if
    present, is the one line ``status`` prints. ``None``: nothing to show. Raise
    :class:`oauth_core.errors.OAuthHubError` when the request failed: ``status`` shows
    the message and goes on.
    """


@hookspec(firstresult=True)
def revocation_hint(settings: dict[str, Any], credentials: Any) -> str | None:
    """Where a person revokes the sign-in by hand, when the provider offers no API to do it.

    Called by ``logout`` before the local copy is deleted (after ``revoke_tokens``, if
    that ran and did not revoke). Return one sentence naming the page (the sign-in stays
    valid at the provider until then), or ``None``. No network access.
    """


@hookspec(firstresult=True)
def obtain_api_key(settings: dict[str, Any], http: Any, credentials: Any) -> str | None:
    """An API key for the account, where the provider can issue one.

    Return ``None`` when the account cannot have one (the engine then uses the access
    token). Raise :class:`oauth_core.errors.OAuthHubError` when the provider refused:
    the engine reports it as a warning and the login still succeeds.

    Called at login, and again when an API call made with the key was answered 401
    (the key was revoked): first with the stored credentials, and only if that
    fails after a refresh. Never on an ordinary refresh, since tools that were
    handed the key keep using it.
    """


@hookspec(firstresult=True)
def list_models(settings: dict[str, Any], http: Any, credentials: Any) -> list[dict[str, Any]]:
    """The models this account may use.

    Each item is a dict with at least ``id`` (the provider's model name) and, where
    known, ``context_length``. Only models an agent tool can chat with belong here.
    """


@hookspec(firstresult=True)
def model_entry(settings: dict[str, Any], model: dict[str, Any], credentials: Any) -> dict[str, Any]:
    """The model entry agent tools read, for one item of :func:`list_models`.

    The engine stores it under ``settings["prefix"] + model["id"]`` and stamps
    ``oauth_source`` if the entry has none, so ``logout`` removes exactly its own.
    """


@hookspec(firstresult=True)
def refresh_tokens(settings: dict[str, Any], http: Any, credentials: Any) -> dict[str, Any]:
    """Use the refresh token; return the token endpoint's answer (fields may be missing).

    Raise :class:`oauth_core.errors.SignInEnded` when the refresh token is dead for
    good (expired, reused, revoked), so the engine tells the person to log in again
    and keeps the stored tokens untouched.
    """


@hookspec(firstresult=True)
def revoke_tokens(settings: dict[str, Any], http: Any, credentials: Any) -> bool:
    """Revoke the sign-in at the provider on logout (best effort).

    Return ``True`` if revoked, ``False`` if the provider has no revocation; raise an
    ``OAuthHubError`` if it failed (logout goes on and says so).

    Also called after a login that replaced an earlier sign-in, with the earlier
    credentials (as the vendors' own CLIs do), so a stale refresh token does
    not stay valid; a failure there is a warning.
    """


@hookspec(firstresult=True)
def request_headers(settings: dict[str, Any], credentials: Any, use_api_key: bool) -> dict[str, str]:
    """Every header an API call needs to authenticate, the credential header included.

    ``use_api_key`` says whether to authenticate with ``credentials.api_key`` or with
    the access token. Without this hook the engine sends ``Authorization: Bearer``
    with the chosen secret and nothing else.
    """


@hookspec(firstresult=True)
def api_base(settings: dict[str, Any], credentials: Any) -> str:
    """The base URL that API calls made with these credentials go to.

    ``oauth-hub serve`` forwards ``/<provider>/<rest>`` to ``<api_base>/<rest>``, and
    exporters point direct (API-key) entries at it. Subscriptions and API keys are often
    served from different hosts. Without this hook the ``api_base`` setting is used.
    """


@hookspec(firstresult=True)
def start_device_login(settings: dict[str, Any], http: Any) -> dict[str, Any]:
    """Begin a device-code sign-in (optional; enables ``oauth-hub login NAME --device``).

    Return a dict with ``verification_uri`` (the page the person opens), ``user_code``
    (what they type there), ``interval`` (seconds between polls; a number or a string)
    and ``expires_in`` (seconds), plus whatever :func:`poll_device_login` needs.
    """


@hookspec(firstresult=True)
def poll_device_login(settings: dict[str, Any], http: Any, device: dict[str, Any]) -> dict[str, Any] | None:
    """Ask once whether the device code was approved.

    ``device`` is what :func:`start_device_login` returned. Return ``None`` while the
    person has not approved yet; the token endpoint's answer (as from
    :func:`exchange_code`) once they have. Raise :class:`oauth_core.errors.LoginError`
    when the code expired or was denied.
    """


@hookspec(firstresult=True)
def environment(settings: dict[str, Any], credentials: Any) -> dict[str, str]:
    """Environment variables for ``oauth-hub env`` / ``exec``, e.g. ``CHATGPT_OAUTH_API_KEY``."""


# -- taking over another program's sign-in (`oauth-hub import`) -----------------------------------


@hookspec(firstresult=True)
def import_sources(settings: dict[str, Any], environ: dict[str, str]) -> list[dict[str, str]] | None:
    """Other programs whose stored sign-in this provider can take over, for ``oauth-hub import``.

    Each ``{"name": "codex", "title": "the Codex CLI", "path": "/home/me/.codex/auth.json"}``;
    ``path`` is where that program keeps it (``environ`` gives its own variables, e.g. ``CODEX_HOME``).
    """


@hookspec(firstresult=True)
def read_import(settings: dict[str, Any], source: str, path: str) -> dict[str, Any]:
    """Read the sign-in at ``path``: ``{"answer": {access_token, refresh_token, id_token?, scope?, …}}``,
    optionally with ``expires_at`` (epoch seconds), ``last_refresh`` (ISO-8601) and ``api_key``.
    Raise ``OAuthHubError`` with what to do when there is none or it cannot be used."""


@hookspec(firstresult=True)
def release_import(settings: dict[str, Any], source: str, path: str, credentials: Any) -> str | None:
    """Remove the other program's copy once oauth-hub has stored ``credentials`` (only if it is still
    that sign-in), so the two never refresh it both; return a sentence saying what was done."""


# -- the gateway (`oauth-hub serve`'s /v1 routes) -------------------------------------------------


@hookspec(firstresult=True)
def gateway_backend(settings: dict[str, Any], credentials: Any, model: dict[str, Any] | None) -> dict[str, str]:
    """The dialects this sign-in's backend speaks, each mapped to its path under the upstream base.

    Dialects are ``"chat"`` (OpenAI Chat Completions), ``"responses"`` (OpenAI
    Responses) and ``"messages"`` (Anthropic Messages); the upstream base is what
    :func:`api_base` gives. The first one is the backend's preferred dialect: a client
    speaking a dialect the backend lacks is translated into it. Return ``None`` (or do
    not implement the hook) to stay off the gateway; the raw ``/<provider>/…`` route
    still forwards.

    ``model`` is the model entry (from ``<provider>_models.json``, as
    :func:`model_entry` wrote it) that a ``/v1`` call is for, for backends that serve
    each model through its own set of dialects; ``None`` when the question is about the
    backend as a whole (listing, raw-route calls): then name every dialect it has.
    """


@hookspec(firstresult=True)
def gateway_request(settings: dict[str, Any], credentials: Any, request: Any) -> None:
    """Make a request acceptable to the backend, changing ``request`` in place.

    ``request`` is an :class:`oauth_core.gateway.backend.BackendRequest`: ``dialect``,
    ``path``, ``model``, ``body`` (the JSON body in the backend's dialect, already
    translated), ``headers`` (sent over the authentication headers), and read-only
    ``client_headers``, ``client_dialect``, ``client_stream``. Called for every /v1 call
    and for raw-route calls to one of the :func:`gateway_backend` paths. Setting
    ``body["stream"] = True`` for a caller that did not ask to stream is fine: the
    gateway then collects the stream into one answer. Return ``None``.
    """


@hookspec(firstresult=True)
def gateway_response_event(settings: dict[str, Any], dialect: str, event: dict[str, Any]) -> dict[str, Any]:
    """Adapt or observe one answer from the backend before the gateway reads it.

    ``event`` is the JSON data of one streamed event (or the whole body of an answer
    that was not streamed) in the backend's ``dialect``. Return a replacement, or
    ``None`` to keep it (changes made in place count). Only implement it when needed:
    without it, same-dialect streams are relayed byte for byte.
    """


@hookspec(firstresult=True)
def gateway_rate_limits(settings: dict[str, Any], headers: Any) -> list[dict[str, Any]]:
    """The usage windows the backend reported in an answer's ``headers``.

    ``headers`` is a case-insensitive mapping. Return a list of windows, each
    ``{"name": str, "used_percent": float, "window_minutes": int, "resets_at": epoch
    seconds}`` (the last two optional), or ``None`` when the answer carries none. The
    gateway keeps the latest per account for ``oauth-hub status``.
    """
