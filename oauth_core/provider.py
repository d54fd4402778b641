"""A loaded provider: its plugin manager plus its effective settings.

:class:`Provider` is the engine's only handle on a provider. Calls go through
:meth:`Provider.call`, which passes the settings along and turns "no implementation
answered" into a clear error naming the provider and the hook.
"""

from __future__ import annotations

import re
from typing import Any

from . import config, plugins
from .credentials import Credentials
from .errors import OAuthHubError, ProviderLoadError, ProviderNotFound
from .store import Store

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

# What every provider has unless its provider_defaults hook says otherwise.
ENGINE_DEFAULTS: dict[str, Any] = {
    "fallback_ports": [],
    "callback_path": "/callback",
    "redirect_host": "127.0.0.1",
    "callback_timeout": 300,
    "cancel_busy_port": False,  # send GET /cancel to whatever holds the port (a stale login)
    "manual_redirect_uri": "",  # a provider page that shows the code to paste (--manual)
    "success_url": "",  # the provider's own "signed in" page, where the callback sends the browser
    "jwks_uri": "",  # where the provider publishes its ID-token keys; "" = it does not
    "nonce": False,  # the provider sends the nonce (OpenID Connect): require it in the ID token
    "require_iss": False,  # RFC 9207: the callback must carry iss
    "verify_id_token": True,
    "id_token_issuer": "{issuer}",
    "id_token_audience": "{client_id}",
    "description": "",
    "secret_settings": [],  # names of settings that hold secrets (client_secret always does): masked when shown
}

# Settings that always hold a secret, whatever the provider declares.
ALWAYS_SECRET = ("client_secret",)
MASK = "********"


def secret_setting_names(settings: dict[str, Any]) -> set[str]:
    """Names of the settings whose values must not be shown: ``client_secret`` plus ``secret_settings``."""
    declared = settings.get("secret_settings")
    return set(ALWAYS_SECRET) | {str(n) for n in declared if isinstance(n, str)} if isinstance(declared, list) \
        else set(ALWAYS_SECRET)


def masked_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` fit to print: a secret that is set shows as ``********``, an unset one as it is."""
    secret = secret_setting_names(settings)
    return {k: (MASK if k in secret and v not in (None, "", [], {}) else v) for k, v in settings.items()}


TEMPLATE_SETTINGS = ("jwks_uri", "id_token_issuer", "id_token_audience")


def _expand(template: str, settings: dict[str, Any]) -> str:
    """``"{issuer}/keys"`` with the value of the ``issuer`` setting (trailing slash dropped)."""
    try:
        return template.format(**{k: str(v).rstrip("/") for k, v in settings.items()})
    except (KeyError, IndexError, ValueError):
        raise OAuthHubError(f"Setting value {template!r} refers to a setting that does not exist.") from None


def check_name(name: str) -> str:
    """Provider names become file names: refuse anything that is not a plain slug."""
    if not NAME_PATTERN.match(name or ""):
        raise ProviderNotFound(
            f"{name!r} is not a valid provider name (lowercase letters, digits, '-' and '_'). "
            "Run `oauth-hub providers` to see the installed ones."
        )
    return name


def account_prefix(settings: dict[str, Any], account: str, is_default: bool) -> str:
    """The model-entry prefix of an account: the provider's ``prefix`` for the default account
    (the names entries always had), with the account's name added for another (``chatgpt-work-``)."""
    prefix = str(settings["prefix"])
    return prefix if is_default else f"{prefix}{account}-"


def _is_port(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535


def _check_ports(name: str, settings: dict[str, Any]) -> None:
    """Refuse a provider whose callback ports cannot work when it is loaded, not halfway through a login."""
    if "port" not in settings:
        raise ProviderLoadError(f"Provider {name!r} declares no callback port (provider_defaults 'port').")
    fallback = settings.get("fallback_ports")
    if not isinstance(fallback, list):
        raise ProviderLoadError(f"Provider {name!r}: fallback_ports must be a list of port numbers.")
    for port in [settings["port"], *fallback]:
        if not _is_port(port):
            raise ProviderLoadError(
                f"Provider {name!r}: {port!r} is not a port number (0-65535). Check its port and fallback_ports "
                f"(provider_defaults, and [providers.{name}] in config.toml).")


class Provider:
    """One provider, ready to be called."""

    def __init__(self, name: str, pm: Any, settings: dict[str, Any]) -> None:
        self.name = name
        self.pm = pm
        self.settings = settings
        self._resolved = False
        self._jwks: dict[str, Any] | None = None

    def resolve(self, http: Any) -> None:
        """Apply the provider's run-time settings (``resolve_settings``) once."""
        if self._resolved:
            return
        extra = self.call("resolve_settings", required=False, http=http)
        if extra:
            self.settings.update(extra)
        self._resolved = True

    def __repr__(self) -> str:
        return f"Provider({self.name!r})"

    @classmethod
    def load(cls, name: str, store: Store) -> Provider:
        """Import the provider, check its hooks, and apply ``config.toml``."""
        check_name(name)
        pm = plugins.plugin_manager(name, store.home)
        defaults = dict(ENGINE_DEFAULTS)
        defaults["prefix"] = f"{name}-"
        defaults["oauth_source"] = f"oauth-hub:{name}"
        defaults.update(pm.hook.provider_defaults() or {})
        path = store.config_path()
        settings = config.merge(defaults, config.provider_table(config.load(path), name), path=path, provider=name)
        settings["name"] = name
        # Our own templates ("{issuer}/.well-known/jwks.json") are expanded here, once, so
        # one `issuer` override moves them all. Values a provider learns at run time
        # (resolve_settings, e.g. OIDC discovery) are taken literally, never formatted.
        if settings.get("jwks_uri"):  # the templates matter only to ID-token verification
            for key in TEMPLATE_SETTINGS:
                if isinstance(settings.get(key), str) and "{" in settings[key]:
                    settings[key] = _expand(settings[key], settings)
        _check_ports(name, settings)
        return cls(name, pm, settings)

    @property
    def title(self) -> str:
        return str(self.settings.get("title") or self.name)

    @property
    def ports(self) -> list[int]:
        ports = [self.settings["port"], *self.settings.get("fallback_ports", [])]
        return list(dict.fromkeys(int(p) for p in ports))

    def redirect_uri(self, port: int) -> str:
        return f"http://{self.settings['redirect_host']}:{port}{self.settings['callback_path']}"

    def credentials_from(
        self, answer: dict[str, Any], previous: Credentials | None = None, *, http: Any = None,
        nonce: str | None = None, received_at: float | None = None,
    ) -> Credentials:
        """Credentials from a token endpoint answer, labelled by ``describe_account``.

        On a refresh, fields the answer leaves out are kept from ``previous``. A new ID
        token is verified first when the provider publishes a JWKS (``jwks_uri``), with
        ``nonce`` required in it after a login by a provider that sends one.
        ``received_at``: when the answer arrived, if that was a while ago (its
        ``expires_in`` counts from then).
        """
        if not isinstance(answer, dict):
            raise OAuthHubError(f"{self.title} answered the token request with something that is not a JSON object.")
        if isinstance(answer.get("id_token"), str) and answer["id_token"]:
            self.verify_id_token(answer["id_token"], http, nonce=nonce, received_at=received_at)
        credentials = Credentials.from_token_response(self.name, answer, previous=previous, received_at=received_at)
        account = self.call("describe_account", required=False, credentials=credentials, answer=answer)
        if account:
            credentials.account = account
        return credentials

    def attach_api_key(self, credentials: Credentials, http: Any) -> str | None:
        """Ask the provider for an API key and put it on ``credentials``.

        Best effort, at login and after a refresh that brought a new ID token: returns
        the refusal as a message (the caller decides whether to show it); without a key
        the previous one, if any, is kept.
        """
        if not self.has("obtain_api_key"):
            return None
        try:
            key = self.call("obtain_api_key", required=False, http=http, credentials=credentials)
        except OAuthHubError as exc:
            return f"No API key: {exc}"
        if key:
            from .credentials import utc_now_iso

            credentials.api_key = key
            credentials.api_key_obtained_at = utc_now_iso()
        return None

    def verify_id_token(self, id_token: str, http: Any = None, nonce: str | None = None,
                        received_at: float | None = None) -> dict[str, Any] | None:
        """Verified claims of ``id_token``; ``None`` when the provider has no JWKS (or it is off)."""
        from . import idtoken

        jwks = self.signing_keys(http)
        if jwks is None:
            return None
        issuer, audience = self.settings["id_token_issuer"], self.settings["id_token_audience"]
        try:
            return idtoken.verify(
                id_token, jwks=jwks, issuer=issuer, audience=audience,
                nonce=nonce if self.settings.get("nonce") else None, provider=self.name, received_at=received_at,
            )
        except idtoken.IdTokenError as exc:
            # The expected values are settings that may be wrong for an account (they are
            # not confirmed against every live token): say exactly what was expected, and
            # how to change or switch off the check, so nobody is stuck.
            raise idtoken.IdTokenError(
                f"{exc} Expected iss {issuer!r}, aud {audience!r}, signing keys from "
                f"{self.settings.get('jwks_uri')!r}. If those are wrong for your account, set the right ones "
                f"(`oauth-hub config set {self.name}.id_token_issuer VALUE`, `….id_token_audience`, `….jwks_uri`) "
                f"or turn the check off: `oauth-hub config set {self.name}.verify_id_token false`."
            ) from None

    def signing_keys(self, http: Any = None) -> dict[str, Any] | None:
        """The provider's JWKS (downloaded once per command); ``None`` when it publishes none.

        A refresh fetches it *before* spending the refresh token, so a failed download
        cannot leave a rotated-away refresh token as the only one on disk.
        """
        if not self.settings.get("verify_id_token", True):
            return None
        if self._jwks is None:
            if http is None:
                from .http import HttpClient

                http = HttpClient()
            self.resolve(http)
            uri = self.settings.get("jwks_uri") or ""
            if not uri:
                return None
            jwks = http.get(uri, what="signing key (JWKS) download", retries=2)
            self._jwks = jwks if isinstance(jwks, dict) else {}
        return self._jwks

    def auth_headers(self, credentials: Credentials, use_api_key: bool) -> dict[str, str]:
        """Headers that authenticate an API call: the provider's, or a plain bearer."""
        headers = self.call("request_headers", required=False, credentials=credentials, use_api_key=use_api_key)
        if headers:
            return dict(headers)
        secret = credentials.api_key if use_api_key else credentials.access_token
        return {"Authorization": f"Bearer {secret}"}

    def has(self, hook: str) -> bool:
        return bool(getattr(self.pm.hook, hook).get_hookimpls())

    def call(self, hook: str, *, required: bool = True, **kwargs: Any) -> Any:
        """Call ``hook`` with the settings and ``kwargs``; insist on an answer if ``required``."""
        caller = getattr(self.pm.hook, hook)
        if not caller.get_hookimpls():
            if required:
                raise OAuthHubError(f"Provider {self.name!r} does not implement the {hook!r} hook.")
            return None
        result = caller(settings=self.settings, **kwargs)
        if result is None and required:
            raise OAuthHubError(f"Provider {self.name!r} returned nothing from {hook!r}.")
        return result
