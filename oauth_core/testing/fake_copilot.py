"""A strict, in-process fake of GitHub's device sign-in and of the GitHub Copilot API.

What it stands in for, as the current reference clients use it (the GitHub Copilot
language server ``@github/copilot-language-server`` 1.539.0, the Copilot CLI
``@github/copilot`` 1.0.102, LiteLLM 1.110.2, copilot-api 0.7.0, opencode 1.18.33). One
loopback server plays every host; each lives under a path prefix named after it, so a
client pointed at the wrong host gets the 404 the real one would give:

* ``github.com`` — ``POST /github.com/login/device/code`` and
  ``POST /github.com/login/oauth/access_token`` (RFC 8628, GitHub's flavour: JSON only
  when asked for with ``Accept: application/json``, every poll answered HTTP 200 with
  ``error`` = ``authorization_pending`` / ``slow_down`` (with the raised ``interval``) /
  ``expired_token`` / ``access_denied`` / ``incorrect_device_code`` / …), and the page a
  person types the code into, ``/github.com/login/device`` (``POST`` its form with
  ``user_code`` and ``action=authorize`` or ``deny``, as a person would).
* ``api.github.com`` — ``GET /api.github.com/user``, ``GET …/copilot_internal/user`` (plan,
  quotas, endpoints) and ``GET …/copilot_internal/v2/token`` (the short-lived Copilot
  token, for GitHub tokens of the Copilot editor app only).
* the Copilot API — ``/api.githubcopilot.com`` and the per-plan hosts
  ``/api.individual.githubcopilot.com``, ``/api.business…``, ``/api.enterprise…``:
  ``GET /models``, ``POST /chat/completions``, ``POST /responses``, ``POST /v1/messages``.

What it refuses, as the real service does (public reports quoted where the reference
clients do not say): a request to the Copilot API with a token of the editor ("IDE")
app and no ``Editor-Version`` (``400 bad request: missing Editor-Version header for IDE
auth``) or an unknown editor (``… unknown Editor-Version header for IDE auth``), no
``Copilot-Integration-Id`` (``400 bad request: missing required Copilot-Integration-Id
header``) or an unknown one, an image without ``Copilot-Vision-Request: true``, a model
the plan does not offer (``model_not_supported``) or one called on an endpoint it does
not list in ``supported_endpoints`` (``unsupported_api_for_model``), an expired Copilot
token (401), and a device poll sooner than the code's interval (``slow_down``). Which
HTTP status the no-seat answers carry is not confirmed by any source: the fake answers
``copilot_internal/v2/token`` with 403 and ``copilot_internal/user`` with 404.

Every inference request is recorded; a user-initiated one (``X-Initiator`` not
``agent``) to a premium model spends premium requests by the model's multiplier, so
``copilot_internal/user`` reports what was used. Nothing is logged: URLs and bodies
carry codes and tokens.
"""

from __future__ import annotations

import html
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from oauth_core.testing import _chat
from oauth_core.testing._server import (
    FORM,
    JSON,
    MISSING,
    FakeServer,
    RecordedRequest,
    ReplyError,
    Request,
    RequestHandler,
    Response,
    html_page,
    json_response,
    serve_until_interrupted,
    single,
    text_page,
)

__all__ = ["DEFAULT_MODELS", "IDE_CLIENT_ID", "FakeCopilot", "RecordedRequest"]

#: The GitHub Copilot editor app (a GitHub App): the language server's default client id.
IDE_CLIENT_ID = "Iv1.b507a08c87ecfe98"
#: OAuth apps whose tokens go to the Copilot API directly: opencode's and the Copilot CLI's.
OAUTH_APP_CLIENT_IDS = ("Ov23li8tweQw6odWQebz", "Ov23ctDVkRmgkPke0Mmm")
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
INTEGRATION_IDS = frozenset({"vscode-chat", "copilot-developer-cli", "jetbrains-chat", "copilot-language-server",
                             "vscode-chat-dev"})
EDITORS = frozenset({"vscode", "Neovim", "vim", "JetBrains-IC", "JetBrains-IU", "JetBrains-PY", "Xcode", "Zed",
                     "visualstudio", "emacs", "copilot-cli"})

GITHUB = "/github.com"
DEVICE_CODE_PATH = GITHUB + "/login/device/code"
ACCESS_TOKEN_PATH = GITHUB + "/login/oauth/access_token"
DEVICE_PAGE_PATH = GITHUB + "/login/device"
API = "/api.github.com"
USER_PATH = API + "/user"
COPILOT_USER_PATH = API + "/copilot_internal/user"
COPILOT_TOKEN_PATH = API + "/copilot_internal/v2/token"
CAPI_HOSTS = {"default": "/api.githubcopilot.com", "individual": "/api.individual.githubcopilot.com",
              "business": "/api.business.githubcopilot.com", "enterprise": "/api.enterprise.githubcopilot.com"}

#: plan → (copilot_plan, access_type_sku, endpoints host, premium requests a month)
PLANS: dict[str, tuple[str, str, str, int]] = {
    "free": ("individual", "free_limited_copilot", "individual", 50),
    "individual": ("individual", "monthly_subscriber_quota", "individual", 300),
    "individual_pro": ("individual_pro", "plus_monthly_subscriber_quota", "individual", 1500),
    "business": ("business", "copilot_for_business_seat_quota", "business", 300),
    "enterprise": ("enterprise", "copilot_enterprise_seat_quota", "enterprise", 1000),
}


def _model(ident: str, name: str, vendor: str, endpoints: list[str], *, multiplier: float = 0, vision: bool = True,
           picker: bool = True, kind: str = "chat", policy: str | None = "enabled", context: int = 128000,
           output: int = 16384) -> dict[str, Any]:
    model: dict[str, Any] = {
        "id": ident, "name": name, "version": ident, "vendor": vendor, "object": "model", "preview": False,
        "model_picker_enabled": picker, "is_chat_default": ident == "gpt-4.1", "is_chat_fallback": False,
        "supported_endpoints": endpoints,
        "billing": {"is_premium": multiplier > 0, "multiplier": multiplier},
        "capabilities": {
            "family": ident, "type": kind, "tokenizer": "o200k_base", "object": "model_capabilities",
            "limits": {"max_context_window_tokens": context, "max_output_tokens": output,
                       "max_prompt_tokens": context - output},
            "supports": {"streaming": True, "tool_calls": kind == "chat", "parallel_tool_calls": kind == "chat",
                         "vision": vision, "structured_outputs": kind == "chat"},
        },
    }
    if policy is not None:
        model["policy"] = {"state": policy, "terms": f"Enable access to {name}."}
    return model


DEFAULT_MODELS: tuple[dict[str, Any], ...] = (
    _model("gpt-4.1", "GPT-4.1", "Azure OpenAI", ["/chat/completions", "/responses"]),
    _model("gpt-5-mini", "GPT-5 mini", "Azure OpenAI", ["/chat/completions", "/responses"], context=264000,
           output=64000),
    _model("gpt-5-codex", "GPT-5-Codex", "OpenAI", ["/responses"], multiplier=1, context=400000, output=128000),
    _model("claude-sonnet-4.5", "Claude Sonnet 4.5", "Anthropic", ["/chat/completions", "/v1/messages"],
           multiplier=1, context=200000, output=32000),
    # Listed but not for agent tools: hidden from the picker, switched off by policy, not a chat model.
    _model("gpt-4o-mini", "GPT-4o mini", "Azure OpenAI", ["/chat/completions"], picker=False),
    _model("gemini-2.5-pro", "Gemini 2.5 Pro", "Google", ["/chat/completions"], multiplier=1, policy="disabled"),
    _model("text-embedding-3-small", "Embedding V3 small", "Azure OpenAI", ["/embeddings"], kind="embeddings",
           picker=False, vision=False, policy=None),
)


@dataclass
class _DeviceCode:
    client_id: str
    scope: str
    user_code: str
    expires_at: float
    interval: int
    next_poll_at: float  # monotonic: a poll before this is answered slow_down
    state: str = "pending"  # pending | approved | denied | issued


@dataclass
class _GitHubToken:
    client_id: str
    scope: str
    revoked: bool = False


@dataclass
class _CopilotToken:
    github_token: str
    expires_at: float
    force_expired: bool = False


@dataclass
class _Usage:
    used: dict[str, float] = field(default_factory=dict)


def _capi_error(status: int, message: str, code: str, param: str | None = None) -> ReplyError:
    """The Copilot API's JSON error envelope (OpenAI's shape)."""
    return ReplyError(json_response(status, {"error": {"message": message, "code": code, "param": param,
                                                       "type": "invalid_request_error"}}))


def _capi_text(status: int, message: str) -> ReplyError:
    """The plain-text refusals the Copilot API answers for authentication problems."""
    return ReplyError(Response(status, message.encode(), "text/plain; charset=utf-8"))


def _github_error(status: int, message: str) -> ReplyError:
    return ReplyError(json_response(status, {"message": message, "documentation_url": "https://docs.github.com/rest",
                                             "status": str(status)}, {"X-GitHub-Request-Id": _request_id()}))


def _request_id() -> str:
    return f"{secrets.token_hex(2).upper()}:{secrets.token_hex(3).upper()}:{secrets.token_hex(4).upper()}"


class _Handler(RequestHandler):
    server_version = "fake-github"


class FakeCopilot(FakeServer):
    """Fake of GitHub's device sign-in, its Copilot endpoints and the Copilot API.

    Every constructor argument is also a plain attribute that tests may change between
    steps (``fake.plan = None`` takes the seat away). Typical use::

        with FakeCopilot(interval=1) as fake:
            device = requests.post(fake.device_code_url, json={"client_id": IDE_CLIENT_ID, "scope": "read:user"},
                                   headers={"Accept": "application/json"}).json()
            fake.approve(device["user_code"])
    """

    _handler_class = _Handler
    _label = "FakeCopilot"

    def __init__(
        self,
        *,
        login: str = "octocat",
        user_id: int = 583231,
        name: str = "The Octocat",
        email: str | None = "octocat@example.com",
        plan: str | None = "individual",
        interval: int = 5,
        slow_down_increment: int = 5,
        device_code_ttl: int = 899,
        copilot_token_ttl: int = 1800,
        accept_github_token_bearer: bool = True,
        models: list[dict[str, Any]] | None = None,
        reply_text: str = "Hello from the fake Copilot",
        organizations: list[str] | None = None,
        clock_offset: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        connection_timeout: float = 10.0,
    ) -> None:
        super().__init__(host=host, port=port, connection_timeout=connection_timeout, clock_offset=clock_offset)
        self.login = login
        self.user_id = user_id
        self.name = name
        #: The account's public email; None when it keeps it private (GitHub then answers null).
        self.email = email
        #: One of :data:`PLANS` ("free", "individual", "individual_pro", "business", "enterprise"), or
        #: None for an account without a Copilot seat.
        self.plan = plan
        #: Seconds between polls the device code asks for (GitHub: 5).
        self.interval = interval
        #: How much a ``slow_down`` answer raises the interval (GitHub: 5 s).
        self.slow_down_increment = slow_down_increment
        self.device_code_ttl = device_code_ttl
        #: Lifetime of a Copilot token; ``refresh_in`` is 300 s shorter.
        self.copilot_token_ttl = copilot_token_ttl
        #: Take a GitHub token as the Copilot API's bearer too (LiteLLM, opencode and the
        #: Copilot CLI send it without the exchange).
        self.accept_github_token_bearer = accept_github_token_bearer
        self.models: list[dict[str, Any]] = [dict(m) for m in (models if models is not None else DEFAULT_MODELS)]
        self.reply_text = reply_text
        self.organizations = list(organizations or [])
        #: The next N polls answer slow_down even when on time (a server under load).
        self.force_slow_down = 0

        self._devices: dict[str, _DeviceCode] = {}
        self._github_tokens: dict[str, _GitHubToken] = {}
        self._copilot_tokens: dict[str, _CopilotToken] = {}
        self._usage = _Usage()
        #: The ``error`` of every device poll answered (``"token"`` for the success), in order.
        self.poll_results: list[str] = []
        self._approved = threading.Condition(self._lock)

        self._routes = {
            DEVICE_CODE_PATH: {"POST": self._device_code},
            ACCESS_TOKEN_PATH: {"POST": self._access_token},
            DEVICE_PAGE_PATH: {"GET": self._device_page, "POST": self._device_form},
            USER_PATH: {"GET": self._user},
            COPILOT_USER_PATH: {"GET": self._copilot_user},
            COPILOT_TOKEN_PATH: {"GET": self._copilot_token},
        }
        for prefix in CAPI_HOSTS.values():
            self._routes[prefix + "/models"] = {"GET": self._models}
            self._routes[prefix + "/chat/completions"] = {"POST": self._chat}
            self._routes[prefix + "/responses"] = {"POST": self._responses}
            self._routes[prefix + "/v1/messages"] = {"POST": self._messages}

    # ------------------------------------------------------------------ addresses

    @property
    def github_url(self) -> str:
        """Stands in for ``https://github.com``."""
        return self.issuer + GITHUB

    @property
    def github_api_url(self) -> str:
        """Stands in for ``https://api.github.com``."""
        return self.issuer + API

    @property
    def copilot_api_url(self) -> str:
        """Stands in for ``https://api.githubcopilot.com`` (the default base)."""
        return self.issuer + CAPI_HOSTS["default"]

    def plan_api_url(self, plan: str | None = None) -> str:
        """The ``endpoints.api`` of a plan, e.g. stands in for ``https://api.individual.githubcopilot.com``."""
        host = PLANS[plan or self.plan or "individual"][2]
        return self.issuer + CAPI_HOSTS[host]

    @property
    def device_code_url(self) -> str:
        return self.issuer + DEVICE_CODE_PATH

    @property
    def access_token_url(self) -> str:
        return self.issuer + ACCESS_TOKEN_PATH

    @property
    def device_page_url(self) -> str:
        return self.issuer + DEVICE_PAGE_PATH

    @property
    def user_url(self) -> str:
        return self.issuer + USER_PATH

    @property
    def copilot_user_url(self) -> str:
        return self.issuer + COPILOT_USER_PATH

    @property
    def copilot_token_url(self) -> str:
        return self.issuer + COPILOT_TOKEN_PATH

    def provider_settings(self) -> dict[str, Any]:
        """The ``[providers.copilot]`` settings that point oauth-hub at this fake."""
        return {"issuer": self.github_url, "github_api": self.github_api_url, "api_base": self.copilot_api_url}

    def inference_requests(self) -> list[RecordedRequest]:
        """Every request to a Copilot API inference endpoint, on any of its hosts, oldest first."""
        ends = ("/chat/completions", "/responses", "/v1/messages")
        with self._lock:
            return [r for r in self.requests if r.path.endswith(ends) and r.path.split("/")[1].startswith("api.")]

    # ------------------------------------------------------------------ test knobs

    def approve(self, user_code: str) -> None:
        """The person typed ``user_code`` on github.com/login/device and authorized the app."""
        self._decide(user_code, "approved")

    def deny(self, user_code: str) -> None:
        """The person pressed Cancel on the authorization page."""
        self._decide(user_code, "denied")

    def pending_user_codes(self) -> list[str]:
        with self._lock:
            return [d.user_code for d in self._devices.values() if d.state == "pending"]

    def wait_for_user_code(self, timeout: float = 30.0) -> str:
        """Block until a device code was issued and is pending; return its user code (for scripts)."""
        deadline = time.monotonic() + timeout
        with self._approved:
            while True:
                pending = [d.user_code for d in self._devices.values() if d.state == "pending"]
                if pending:
                    return pending[-1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no device code was requested")
                self._approved.wait(left)

    def expire_copilot_tokens(self) -> None:
        """Every Copilot token issued so far now fails as expired (what the client was told is unchanged)."""
        with self._lock:
            for token in self._copilot_tokens.values():
                token.force_expired = True

    def revoke_github_tokens(self) -> None:
        """The person revoked the app at github.com/settings: every GitHub token dies, and its Copilot tokens."""
        with self._lock:
            for token in self._github_tokens.values():
                token.revoked = True

    def mint_github_token(self, client_id: str = IDE_CLIENT_ID, scope: str = "read:user") -> str:
        """A GitHub token as the device flow would issue it (for tests that skip the sign-in)."""
        with self._lock:
            return self._new_github_token(client_id, scope)

    def mint_tokens(self, client_id: str = IDE_CLIENT_ID) -> dict[str, Any]:
        """A sign-in as oauth-hub's Copilot provider stores it after the exchange (for seeding a home):
        the Copilot token as ``access_token``, the GitHub token it came from as ``refresh_token``."""
        github = self.mint_github_token(client_id)
        now = self.now()
        copilot_plan, sku = PLANS[self.plan or "individual"][:2]
        with self._lock:
            expires = int(now + self.copilot_token_ttl)
            token = f"tid={secrets.token_hex(16)};exp={expires};sku={sku}:{secrets.token_hex(32)}"
            self._copilot_tokens[token] = _CopilotToken(github, now + self.copilot_token_ttl)
        return {"access_token": token, "refresh_token": github, "expires_in": self.copilot_token_ttl - 240,
                "copilot": {"api": self.plan_api_url(), "sku": sku, "chat_enabled": True}}

    def copilot_tokens_issued(self) -> int:
        with self._lock:
            return len(self._copilot_tokens)

    def premium_used(self) -> float:
        with self._lock:
            return self._usage.used.get("premium_interactions", 0.0)

    # ------------------------------------------------------------------ error hooks

    def _not_found(self, req: Request) -> Response:
        if req.path.startswith(API):
            return _github_error(404, "Not Found").response
        return Response(404, b"404 page not found", "text/plain; charset=utf-8")

    def _method_not_allowed(self, req: Request) -> Response:
        return Response(405, b"method not allowed", "text/plain; charset=utf-8")

    def _length_required(self) -> Response:
        return Response(411, b"length required", "text/plain; charset=utf-8")

    def _bad_body_length(self, status: int) -> Response:
        return Response(status, b"bad request", "text/plain; charset=utf-8")

    def _internal_error(self) -> Response:
        return Response(500, b"internal error in fake", "text/plain; charset=utf-8")

    def _injected_failure(self, status: int) -> Response:
        return json_response(status, {"message": "Injected failure", "status": str(status)})

    # ------------------------------------------------------------------ github.com: device flow

    def _params(self, req: Request) -> dict[str, str]:
        """A github.com/login body: JSON (what the Copilot clients send) or a form (what RFC 8628 says)."""
        if req.content_type == JSON and isinstance(req.json, dict) and req.json is not MISSING:
            return {k: v for k, v in req.json.items() if isinstance(v, str)}
        if req.content_type == FORM and req.form is not None:
            try:
                return {k: single(req.form, k) or "" for k in req.form}
            except ValueError as exc:
                raise self._oauth(req, "invalid_request", f"{exc} was given more than once.") from None
        return {}

    @staticmethod
    def _wants_json(req: Request) -> bool:
        return "application/json" in (req.headers.get("Accept") or "")

    def _oauth(self, req: Request, code: str, description: str, **extra: Any) -> ReplyError:
        """GitHub's OAuth answer: HTTP 200 with ``error`` (form-encoded unless JSON was asked for)."""
        if req.path == ACCESS_TOKEN_PATH:
            with self._lock:
                self.poll_results.append(code)
        body = {"error": code, "error_description": description,
                "error_uri": "https://docs.github.com/developers/apps/authorizing-oauth-apps#error-codes-for-the-"
                             "device-flow", **extra}
        return ReplyError(self._answer(req, body))

    def _answer(self, req: Request, body: dict[str, Any]) -> Response:
        if self._wants_json(req):
            return json_response(200, body)
        return Response(200, urlencode({k: str(v) for k, v in body.items()}).encode(), FORM)

    def _device_code(self, req: Request) -> Response:
        params = self._params(req)
        client_id = params.get("client_id", "")
        if client_id != IDE_CLIENT_ID and client_id not in OAUTH_APP_CLIENT_IDS:
            # The status of this refusal is not documented; GitHub names the error code.
            raise ReplyError(json_response(400, {"error": "incorrect_client_credentials",
                                                 "error_description": "The client_id is not valid."}))
        device_code = secrets.token_hex(20)
        user_code = f"{secrets.token_hex(2).upper()}-{secrets.token_hex(2).upper()}"
        with self._approved:
            self._devices[device_code] = _DeviceCode(
                client_id=client_id, scope=params.get("scope", ""), user_code=user_code,
                expires_at=self.now() + self.device_code_ttl, interval=self.interval,
                next_poll_at=time.monotonic() + self.interval)
            self._approved.notify_all()
        return self._answer(req, {"device_code": device_code, "user_code": user_code,
                                  "verification_uri": self.device_page_url, "expires_in": self.device_code_ttl,
                                  "interval": self.interval})

    def _access_token(self, req: Request) -> Response:
        params = self._params(req)
        if params.get("grant_type") != DEVICE_GRANT:
            raise self._oauth(req, "unsupported_grant_type", "The grant type is not supported.")
        with self._lock:
            device = self._devices.get(params.get("device_code", ""))
            if device is None or device.client_id != params.get("client_id"):
                raise self._oauth(req, "incorrect_device_code", "The device_code provided is not valid.")
            if device.state == "issued":
                raise self._oauth(req, "incorrect_device_code", "The device_code provided is not valid.")
            if self.now() > device.expires_at:
                raise self._oauth(req, "expired_token", "The device_code has expired.")
            if device.state == "denied":
                raise self._oauth(req, "access_denied", "The authorization request was denied.")
            now = time.monotonic()
            early = now < device.next_poll_at
            if early or self.force_slow_down > 0:
                if not early:
                    self.force_slow_down -= 1
                device.interval += self.slow_down_increment
                device.next_poll_at = now + device.interval
                raise self._oauth(req, "slow_down", "Too many requests have been made in the same timeframe.",
                                  interval=device.interval)
            device.next_poll_at = now + device.interval
            if device.state == "pending":
                raise self._oauth(req, "authorization_pending", "The authorization request is still pending.")
            device.state = "issued"
            token = self._new_github_token(device.client_id, device.scope)
            # A GitHub App's user token carries no scopes; an OAuth app's echoes the grant.
            scope = "" if device.client_id == IDE_CLIENT_ID else device.scope
            self.poll_results.append("token")
        return self._answer(req, {"access_token": token, "token_type": "bearer", "scope": scope})

    def _new_github_token(self, client_id: str, scope: str) -> str:
        prefix = "ghu_" if client_id == IDE_CLIENT_ID else "gho_"
        token = prefix + secrets.token_urlsafe(27).replace("-", "a").replace("_", "b")[:36]
        self._github_tokens[token] = _GitHubToken(client_id, scope)
        return token

    def _decide(self, user_code: str, state: str) -> None:
        with self._approved:
            for device in self._devices.values():
                if device.user_code == user_code.strip().upper() and device.state == "pending":
                    device.state = state
                    return
        raise KeyError(f"no pending device code {user_code!r}")

    def _device_page(self, req: Request) -> Response:
        form = (f"<form method='post' action='{html.escape(DEVICE_PAGE_PATH)}'>"
                "<label>Enter the code displayed on your device <input name='user_code'></label>"
                "<button name='action' value='authorize'>Continue</button>"
                "<button name='action' value='deny'>Cancel</button></form>")
        return html_page(200, "Device Activation", form)

    def _device_form(self, req: Request) -> Response:
        params = self._params(req)
        code, action = params.get("user_code", ""), params.get("action", "")
        if action not in ("authorize", "deny"):
            return text_page(400, "Device Activation", "Choose Continue or Cancel.")
        try:
            self._decide(code, "approved" if action == "authorize" else "denied")
        except KeyError:
            return text_page(404, "Device Activation", "That code is not valid or has expired.")
        if action == "deny":
            return text_page(200, "Authorization cancelled", "The device was not authorized.")
        return text_page(200, "Congratulations, you're all set!", "Your device is now connected.")

    # ------------------------------------------------------------------ api.github.com

    def _github_token(self, req: Request) -> _GitHubToken:
        """The GitHub token of ``Authorization: token X`` or ``Bearer X``; 401 as GitHub answers it."""
        scheme, _, value = (req.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() not in ("token", "bearer") or not value:
            raise _github_error(401, "Requires authentication")
        with self._lock:
            token = self._github_tokens.get(value.strip())
        if token is None or token.revoked:
            raise _github_error(401, "Bad credentials")
        return token

    def _user(self, req: Request) -> Response:
        self._github_token(req)
        return json_response(200, {"login": self.login, "id": self.user_id, "node_id": "MDQ6VXNlcjU4MzIzMQ==",
                                   "type": "User", "name": self.name, "email": self.email,
                                   "html_url": f"https://github.com/{self.login}"},
                             {"X-GitHub-Request-Id": _request_id()})

    def _endpoints(self) -> dict[str, str]:
        return {"api": self.plan_api_url(), "proxy": self.issuer + "/copilot-proxy.githubusercontent.com",
                "telemetry": self.issuer + "/copilot-telemetry.githubusercontent.com",
                "origin-tracker": self.issuer + "/origin-tracker.githubusercontent.com"}

    def _quota_reset(self) -> str:
        year, month = time.gmtime(self.now())[:2]
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return f"{year:04d}-{month:02d}-01"

    def _snapshots(self) -> dict[str, dict[str, Any]]:
        assert self.plan is not None
        premium = PLANS[self.plan][3]
        free = self.plan == "free"
        entitlements = {"chat": 50 if free else None, "completions": 2000 if free else None,
                        "premium_interactions": premium}
        out = {}
        for quota, entitlement in entitlements.items():
            used = self._usage.used.get(quota, 0.0)
            unlimited = entitlement is None
            remaining = 0 if unlimited else max(entitlement - used, 0)
            out[quota] = {
                "quota_id": quota, "entitlement": 0 if unlimited else entitlement, "remaining": int(remaining),
                "quota_remaining": float(remaining), "unlimited": unlimited, "overage_count": 0,
                "overage_permitted": not free and quota == "premium_interactions",
                "percent_remaining": 100.0 if unlimited else round(100.0 * remaining / entitlement, 1),
            }
        return out

    def _copilot_user(self, req: Request) -> Response:
        self._github_token(req)
        if self.plan is None:
            raise _github_error(404, "Not Found")
        copilot_plan, sku = PLANS[self.plan][:2]
        with self._lock:
            snapshots = self._snapshots()
        return json_response(200, {
            "login": self.login, "access_type_sku": sku, "copilot_plan": copilot_plan, "chat_enabled": True,
            "analytics_tracking_id": secrets.token_hex(16), "assigned_date": "2025-01-15T10:00:00+00:00",
            "can_signup_for_limited": False, "organization_login_list": list(self.organizations),
            "organization_list": [{"login": o, "name": o} for o in self.organizations],
            "endpoints": self._endpoints(), "quota_reset_date": self._quota_reset(),
            "quota_snapshots": snapshots,
        }, {"X-GitHub-Request-Id": _request_id()})

    def _copilot_token(self, req: Request) -> Response:
        token = self._github_token(req)
        if token.client_id != IDE_CLIENT_ID:
            # Only the editor app's tokens are exchanged; other apps use the GitHub token itself.
            raise _github_error(404, "Not Found")
        if self.plan is None:
            raise ReplyError(json_response(403, {
                "message": "You don't currently have a GitHub Copilot subscription.",
                "error_details": {"notification_id": "not_signed_up", "url": "https://github.com/features/copilot",
                                  "message": "You don't have access to GitHub Copilot.", "title": "No access"},
            }, {"X-GitHub-Request-Id": _request_id()}))
        value = (req.headers.get("Authorization") or "").partition(" ")[2]
        now = self.now()
        expires_at = int(now + self.copilot_token_ttl)
        copilot_plan, sku = PLANS[self.plan][:2]
        with self._lock:
            copilot_token = (f"tid={secrets.token_hex(16)};exp={expires_at};sku={sku};st=dotcom;chat=1;"
                             f"8kp=1:{secrets.token_hex(32)}")
            self._copilot_tokens[copilot_token] = _CopilotToken(value.strip(), expires_at)
        return json_response(200, {
            "token": copilot_token, "expires_at": expires_at, "refresh_in": self.copilot_token_ttl - 300,
            "endpoints": self._endpoints(), "sku": sku, "individual": copilot_plan.startswith("individual"),
            "chat_enabled": True, "code_review_enabled": True, "limited_user_quotas": None,
            "annotations_enabled": True, "copilotignore_enabled": False, "public_suggestions": "disabled",
            "telemetry": "disabled",
        }, {"X-GitHub-Request-Id": _request_id()})

    # ------------------------------------------------------------------ the Copilot API

    def _bearer(self, req: Request) -> tuple[bool, str]:
        """(is_ide_auth, integration) for a request to the Copilot API, or the refusal it deserves."""
        scheme, _, value = (req.headers.get("Authorization") or "").partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            raise _capi_text(401, "unauthorized: missing or malformed Authorization header")
        with self._lock:
            copilot = self._copilot_tokens.get(value)
            github = self._github_tokens.get(value)
            if copilot is not None:
                parent = self._github_tokens.get(copilot.github_token)
                if copilot.force_expired or self.now() >= copilot.expires_at:
                    raise _capi_text(401, "unauthorized: token expired")
                if parent is None or parent.revoked:
                    raise _capi_text(401, "unauthorized: token revoked")
                ide = True
            elif github is not None and self.accept_github_token_bearer and not github.revoked:
                ide = github.client_id == IDE_CLIENT_ID
            else:
                raise _capi_text(401, "unauthorized: the token is not valid")
        if self.plan is None:
            raise _capi_text(403, "forbidden: no Copilot access for this account")
        integration = req.headers.get("Copilot-Integration-Id")
        if ide:
            editor = req.headers.get("Editor-Version")
            if not editor:
                raise _capi_text(400, "bad request: missing Editor-Version header for IDE auth")
            if editor.partition("/")[0] not in EDITORS or not editor.partition("/")[2]:
                raise _capi_text(400, "bad request: unknown Editor-Version header for IDE auth")
            if not integration:
                raise _capi_text(400, "bad request: missing required Copilot-Integration-Id header")
        if integration is not None and integration not in INTEGRATION_IDS:
            raise _capi_text(400, "bad request: unknown Copilot-Integration-Id")
        return ide, integration or "copilot-language-server"

    def _catalog(self) -> list[dict[str, Any]]:
        """The models this plan offers (the free plan has no premium models)."""
        if self.plan == "free":
            return [m for m in self.models if not m.get("billing", {}).get("multiplier")]
        return list(self.models)

    def _models(self, req: Request) -> Response:
        self._bearer(req)
        return json_response(200, {"data": self._catalog(), "object": "list"})

    def _model_for(self, body: dict[str, Any], endpoint: str) -> dict[str, Any]:
        model = next((m for m in self._catalog() if m["id"] == body.get("model")), None)
        if model is None or (model.get("policy") or {}).get("state", "enabled") != "enabled":
            raise _capi_error(400, "The requested model is not supported.", "model_not_supported", "model")
        if endpoint not in model.get("supported_endpoints", []):
            raise _capi_error(400, f"model {model['id']!r} is not accessible via the {endpoint} endpoint",
                              "unsupported_api_for_model", "model")
        return model

    def _inference(self, req: Request, endpoint: str, check: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        self._bearer(req)
        if req.content_type != JSON or not isinstance(req.json, dict):
            raise _capi_error(400, "The request body must be a JSON object.", "invalid_request_body")
        try:
            body = check(req.json)
        except _chat.BodyError as exc:
            raise _capi_error(400, str(exc), "invalid_request_body", exc.param) from None
        model = self._model_for(body, endpoint)
        if _chat.has_image(body) and (req.headers.get("Copilot-Vision-Request") or "").lower() != "true":
            raise _capi_error(400, "missing required Copilot-Vision-Request header for vision requests",
                              "invalid_request_body")
        initiator = req.headers.get("X-Initiator")
        if initiator not in (None, "user", "agent"):
            raise _capi_error(400, "X-Initiator must be 'user' or 'agent'.", "invalid_request_body")
        if initiator != "agent":  # a person's turn is what a plan counts
            multiplier = float(model.get("billing", {}).get("multiplier") or 0)
            with self._lock:
                if multiplier:
                    used = self._usage.used
                    used["premium_interactions"] = used.get("premium_interactions", 0.0) + multiplier
                elif self.plan == "free":
                    self._usage.used["chat"] = self._usage.used.get("chat", 0.0) + 1
        return body, model

    def _chat(self, req: Request) -> Response:
        body, model = self._inference(req, "/chat/completions", _chat.check_chat)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return Response(200, content_type="text/event-stream",
                            stream=_chat.chat_stream(model["id"], self.reply_text, include_usage))
        return json_response(200, _chat.chat_answer(model["id"], self.reply_text))

    def _responses(self, req: Request) -> Response:
        body, model = self._inference(req, "/responses", _chat.check_responses)
        if body.get("stream"):
            return Response(200, content_type="text/event-stream",
                            stream=_chat.responses_stream(model["id"], self.reply_text))
        return json_response(200, _chat.responses_answer(model["id"], self.reply_text))

    def _messages(self, req: Request) -> Response:
        body, model = self._inference(req, "/v1/messages", _chat.check_messages)
        for tool in body.get("tools") or []:
            if isinstance(tool, dict) and "eager_input_streaming" in tool:
                raise _capi_error(400, "tools.0.eager_input_streaming: Extra inputs are not permitted",
                                  "invalid_request_body")
        if body.get("stream"):
            return Response(200, content_type="text/event-stream",
                            stream=_chat.messages_stream(model["id"], self.reply_text))
        return json_response(200, _chat.messages_answer(model["id"], self.reply_text))


def main(argv: list[str] | None = None) -> int:
    """Run the fake by hand: ``python -m oauth_core.testing.fake_copilot [--port N] [--plan PLAN]``."""
    import argparse

    parser = argparse.ArgumentParser(description="A fake github.com device sign-in and Copilot API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free one)")
    parser.add_argument("--plan", default="individual", choices=[*PLANS, "none"])
    args = parser.parse_args(argv)
    fake = FakeCopilot(port=args.port, plan=None if args.plan == "none" else args.plan, interval=1).start()
    print(f"FakeCopilot on {fake.issuer}; [providers.copilot]:")
    for key, value in fake.provider_settings().items():
        print(f'{key} = "{value}"')
    serve_until_interrupted(fake)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
