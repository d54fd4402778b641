"""A strict, in-process fake of OpenRouter's PKCE sign-in and of its API.

It follows OpenRouter's documentation (``OpenRouterTeam/docs``: ``guides/overview/auth/oauth.mdx``,
``api_reference/limits.mdx``, ``openapi/openapi.yaml``) and its SDK ``@openrouter/sdk``
1.3.19. ``openrouter.ai`` is served at the root:

* ``GET /auth?callback_url=…&code_challenge=…&code_challenge_method=S256[&key_label=…][&limit=…]``:
  the page where a person signs in and lets the app have a key. The fake approves at
  once (there is no person) and sends the browser back to ``callback_url`` with
  ``code`` added to the query it already has. Without ``callback_url`` (OpenRouter's
  headless mode) it shows the code on the page instead, and then a ``code_challenge``
  is required. Callback URLs must be ``https`` or ``http://localhost:<any port>``, the
  local case the documentation names; ``http://127.0.0.1`` is not documented and is
  refused unless ``allow_loopback_ip`` is set. Codes are single use and live 10 minutes.
* ``POST /api/v1/auth/keys`` (JSON ``{code, code_verifier, code_challenge_method}``) →
  ``{key, user_id}``, refusing as documented: ``400 Invalid code_challenge_method``
  when the method differs from the one the code was made with, ``403 Invalid code or
  code_verifier``, ``403 Authorization code expired``, ``405`` for anything but POST.
* ``GET /api/v1/key`` (bearer): the key's label (masked), limit, what is left and usage.
* ``GET /api/v1/models``: public; only models that write text unless
  ``output_modalities=all`` is asked for, as the real endpoint filters by default.
* ``POST /api/v1/chat/completions`` (bearer): OpenAI's Chat Completions, whole or
  streamed. A call costs ``price_per_call`` dollars of the key's credit; a key whose
  limit is used up gets ``402``, as the documentation says.

Errors have OpenRouter's envelope ``{"error": {"code": <status>, "message": …}}``.
Keys look like the real ones (``sk-or-v1-`` and 64 hex digits). A key the person
deletes on the website (:meth:`FakeOpenRouter.delete_key`) is refused with 401 from
then on: an OAuth-issued key cannot delete itself (``DELETE /api/v1/keys/{hash}``
takes a management key), which is why oauth-hub's logout only forgets it.
"""

from __future__ import annotations

import html
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from oauth_core.testing import _chat
from oauth_core.testing._server import (
    CHALLENGE_RE,
    JSON,
    FakeServer,
    RecordedRequest,
    ReplyError,
    Request,
    RequestHandler,
    Response,
    add_query,
    html_page,
    json_response,
    s256,
    serve_until_interrupted,
    single,
)

__all__ = ["DEFAULT_MODELS", "FakeOpenRouter", "RecordedRequest"]

AUTH_PATH = "/auth"
KEYS_PATH = "/api/v1/auth/keys"
KEY_PATH = "/api/v1/key"
MODELS_PATH = "/api/v1/models"
CHAT_PATH = "/api/v1/chat/completions"
CODE_TTL = 600


def _model(ident: str, name: str, inputs: list[str], outputs: list[str], params: list[str], context: int,
           prompt: str, completion: str) -> dict[str, Any]:
    return {
        "id": ident, "canonical_slug": ident, "name": name, "created": 1735689600, "description": f"{name}.",
        "context_length": context,
        "architecture": {"modality": f"{'+'.join(inputs)}->{'+'.join(outputs)}", "input_modalities": inputs,
                         "output_modalities": outputs, "tokenizer": "Other", "instruct_type": None},
        "pricing": {"prompt": prompt, "completion": completion, "request": "0", "image": "0"},
        "top_provider": {"context_length": context, "max_completion_tokens": min(context // 4, 32000),
                         "is_moderated": False},
        "per_request_limits": None, "supported_parameters": params, "default_parameters": None,
    }


_TOOLS = ["tools", "tool_choice", "max_tokens", "temperature", "top_p", "stop", "response_format",
          "structured_outputs"]
DEFAULT_MODELS: tuple[dict[str, Any], ...] = (
    _model("openai/gpt-4o", "OpenAI: GPT-4o", ["text", "image", "file"], ["text"], _TOOLS, 128000,
           "0.0000025", "0.00001"),
    _model("anthropic/claude-sonnet-4.5", "Anthropic: Claude Sonnet 4.5", ["text", "image", "file"], ["text"],
           [*_TOOLS, "reasoning", "include_reasoning"], 1000000, "0.000003", "0.000015"),
    _model("meta-llama/llama-3.3-70b-instruct:free", "Meta: Llama 3.3 70B Instruct (free)", ["text"], ["text"],
           ["max_tokens", "temperature", "top_p", "stop"], 131072, "0", "0"),
    # Not chat models for agent tools: one paints pictures, one also answers in pictures.
    _model("black-forest-labs/flux-1.1-pro", "Black Forest Labs: FLUX 1.1 Pro", ["text"], ["image"], [], 4096,
           "0", "0"),
    _model("google/gemini-2.5-flash-image", "Google: Gemini 2.5 Flash Image", ["text", "image"], ["image", "text"],
           ["max_tokens", "temperature"], 32768, "0.0000003", "0.0000025"),
)


@dataclass
class _Code:
    challenge: str | None
    method: str | None
    key_label: str | None
    limit: float | None
    expires_at: float
    used: bool = False


@dataclass
class _Key:
    user_id: str
    label: str  # masked, as OpenRouter shows it
    name: str | None
    limit: float | None
    usage: float = 0.0
    deleted: bool = False


def _error(status: int, message: str) -> ReplyError:
    return ReplyError(json_response(status, {"error": {"code": status, "message": message}}))


class _Handler(RequestHandler):
    server_version = "fake-openrouter"


class FakeOpenRouter(FakeServer):
    """Fake of openrouter.ai's PKCE sign-in and API (``/api/v1``).

    Every constructor argument is also a plain attribute tests may change. Typical
    use: point ``[providers.openrouter]`` at :meth:`provider_settings` and let the
    scripted browser follow ``/auth``; then ``fake.keys()`` are the keys handed out.
    """

    _handler_class = _Handler
    _label = "FakeOpenRouter"

    def __init__(
        self,
        *,
        user_id: str = "user_2yFAKEopenrouterUSER000001",
        is_free_tier: bool = False,
        limit: float | None = 10.0,
        limit_reset: str | None = "monthly",
        price_per_call: float = 0.25,
        models: list[dict[str, Any]] | None = None,
        reply_text: str = "Hello from the fake OpenRouter",
        allow_loopback_ip: bool = False,
        clock_offset: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        connection_timeout: float = 10.0,
    ) -> None:
        super().__init__(host=host, port=port, connection_timeout=connection_timeout, clock_offset=clock_offset)
        self.user_id = user_id
        self.is_free_tier = is_free_tier
        #: The credit limit (USD) a key gets when the sign-in does not ask for one; None: no limit.
        self.limit = limit
        self.limit_reset = limit_reset
        self.price_per_call = price_per_call
        self.models: list[dict[str, Any]] = [dict(m) for m in (models if models is not None else DEFAULT_MODELS)]
        self.reply_text = reply_text
        self.allow_loopback_ip = allow_loopback_ip
        self._codes: dict[str, _Code] = {}
        self._keys: dict[str, _Key] = {}
        self._routes = {
            AUTH_PATH: {"GET": self._auth},
            KEYS_PATH: {"POST": self._exchange},
            KEY_PATH: {"GET": self._key_info},
            MODELS_PATH: {"GET": self._models},
            CHAT_PATH: {"POST": self._chat},
        }

    # ------------------------------------------------------------------ addresses

    @property
    def auth_url(self) -> str:
        return self.issuer + AUTH_PATH

    @property
    def api_base(self) -> str:
        """Stands in for ``https://openrouter.ai/api/v1``."""
        return self.issuer + "/api/v1"

    @property
    def keys_url(self) -> str:
        return self.issuer + KEYS_PATH

    @property
    def key_url(self) -> str:
        return self.issuer + KEY_PATH

    @property
    def chat_url(self) -> str:
        return self.issuer + CHAT_PATH

    def provider_settings(self) -> dict[str, Any]:
        """The ``[providers.openrouter]`` settings that point oauth-hub at this fake."""
        return {"issuer": self.issuer, "api_base": self.api_base}

    # ------------------------------------------------------------------ test knobs

    def keys(self) -> list[str]:
        """The keys handed out and not deleted, oldest first."""
        with self._lock:
            return [k for k, rec in self._keys.items() if not rec.deleted]

    def key_record(self, key: str) -> dict[str, Any]:
        with self._lock:
            rec = self._keys[key]
            return {"label": rec.label, "name": rec.name, "limit": rec.limit, "usage": rec.usage,
                    "deleted": rec.deleted}

    def delete_key(self, key: str) -> None:
        """The person deleted the key in their OpenRouter settings."""
        with self._lock:
            self._keys[key].deleted = True

    def mint_tokens(self) -> dict[str, Any]:
        """A sign-in as oauth-hub's OpenRouter provider stores it (for seeding a home): the key as the access token."""
        return {"access_token": self.mint_key(), "user_id": self.user_id}

    def mint_key(self, limit: float | None = None, label: str = "oauth-hub") -> str:
        """A key as the sign-in would hand it out (for tests that skip the browser)."""
        with self._lock:
            return self._new_key(label, limit if limit is not None else self.limit)

    # ------------------------------------------------------------------ error hooks

    def _not_found(self, req: Request) -> Response:
        return _error(404, "Not Found").response

    def _method_not_allowed(self, req: Request) -> Response:
        return _error(405, "Method Not Allowed").response

    def _length_required(self) -> Response:
        return _error(411, "Length Required").response

    def _bad_body_length(self, status: int) -> Response:
        return _error(status, "Bad Request").response

    def _internal_error(self) -> Response:
        return _error(500, "Internal Server Error").response

    def _injected_failure(self, status: int) -> Response:
        return _error(status, "Injected failure").response

    # ------------------------------------------------------------------ openrouter.ai/auth

    def _callback_allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme == "https" and parts.hostname:
            return True
        loopback = ("localhost", "127.0.0.1") if self.allow_loopback_ip else ("localhost",)
        return parts.scheme == "http" and parts.hostname in loopback and parts.port is not None

    def _auth(self, req: Request) -> Response:
        try:
            callback = single(req.query, "callback_url")
            challenge = single(req.query, "code_challenge")
            method = single(req.query, "code_challenge_method")
            key_label = single(req.query, "key_label")
            limit_text = single(req.query, "limit")
        except ValueError as exc:
            return html_page(400, "Bad request", f"<p>{html.escape(str(exc))} was given more than once.</p>")
        if callback is not None and not self._callback_allowed(callback):
            return html_page(400, "Invalid callback URL",
                             "<p>The callback URL must use https, or http on localhost.</p>")
        if callback is None and not challenge:
            return html_page(400, "Missing code challenge", "<p>Headless sign-ins need a code_challenge.</p>")
        if challenge is not None:
            if method not in ("S256", "plain"):
                return html_page(400, "Invalid code_challenge_method", "<p>Use S256 or plain.</p>")
            if method == "S256" and not CHALLENGE_RE.match(challenge):
                return html_page(400, "Invalid code_challenge", "<p>An S256 challenge is base64url.</p>")
        elif method is not None:
            return html_page(400, "Invalid request", "<p>code_challenge_method without a code_challenge.</p>")
        limit: float | None = None
        if limit_text is not None:
            try:
                limit = float(limit_text)
            except ValueError:
                return html_page(400, "Invalid limit", "<p>The limit is an amount in USD.</p>")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Code(challenge, method, key_label, limit, self.now() + CODE_TTL)
        if callback is None:
            return html_page(200, "Your authorization code",
                             f"<p>Copy this code into the app:</p><pre id='code'>{html.escape(code)}</pre>")
        return Response(302, b"", "text/plain", {"Location": add_query(callback, {"code": code})})

    # ------------------------------------------------------------------ /api/v1/auth/keys

    def _new_key(self, label: str | None, limit: float | None) -> str:
        key = "sk-or-v1-" + secrets.token_hex(32)
        masked = f"{key[:12]}...{key[-3:]}"
        self._keys[key] = _Key(self.user_id, masked, label, limit)
        return key

    def _exchange(self, req: Request) -> Response:
        if req.content_type != JSON or not isinstance(req.json, dict):
            raise _error(400, "The request body must be JSON.")
        body = req.json
        code, verifier, method = body.get("code"), body.get("code_verifier"), body.get("code_challenge_method")
        if not isinstance(code, str) or not code:
            raise _error(400, "code is required")
        if method not in (None, "S256", "plain"):
            raise _error(400, "Invalid code_challenge_method")
        with self._lock:
            rec = self._codes.get(code)
            if rec is None or rec.used:
                raise _error(403, "Invalid code or code_verifier")
            if self.now() > rec.expires_at:
                raise _error(403, "Authorization code expired")
            if rec.challenge is not None:
                if method != rec.method:
                    raise _error(400, "Invalid code_challenge_method")
                expected = s256(verifier) if isinstance(verifier, str) and method == "S256" else verifier
                if not isinstance(verifier, str) or not secrets.compare_digest(str(expected), rec.challenge):
                    raise _error(403, "Invalid code or code_verifier")
            rec.used = True
            key = self._new_key(rec.key_label, rec.limit if rec.limit is not None else self.limit)
        return json_response(200, {"key": key, "user_id": self.user_id})

    # ------------------------------------------------------------------ the API

    def _key_of(self, req: Request) -> tuple[str, _Key]:
        scheme, _, value = (req.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise _error(401, "No auth credentials found")
        with self._lock:
            rec = self._keys.get(value.strip())
        if rec is None or rec.deleted:
            raise _error(401, "User not found.")
        return value.strip(), rec

    def _key_info(self, req: Request) -> Response:
        key, rec = self._key_of(req)
        with self._lock:
            remaining = None if rec.limit is None else round(max(rec.limit - rec.usage, 0.0), 6)
            data = {
                "label": rec.label, "limit": rec.limit, "limit_remaining": remaining,
                "limit_reset": self.limit_reset if rec.limit is not None else None,
                "usage": rec.usage, "usage_daily": rec.usage, "usage_weekly": rec.usage, "usage_monthly": rec.usage,
                "byok_usage": 0, "byok_usage_daily": 0, "byok_usage_weekly": 0, "byok_usage_monthly": 0,
                "include_byok_in_limit": False, "is_free_tier": self.is_free_tier, "is_management_key": False,
                "is_provisioning_key": False, "rate_limit": {"requests": -1, "interval": "10s",
                                                             "note": "This field is deprecated and safe to ignore."},
                "expires_at": None, "creator_user_id": rec.user_id,
            }
        return json_response(200, {"data": data})

    def _models(self, req: Request) -> Response:
        try:
            wanted = single(req.query, "output_modalities") or "text"
        except ValueError:
            raise _error(400, "output_modalities was given more than once") from None
        if wanted == "all":
            data = list(self.models)
        else:
            kinds = set(wanted.split(","))
            data = [m for m in self.models if kinds & set(m["architecture"]["output_modalities"])]
        return json_response(200, {"data": data})

    def _chat(self, req: Request) -> Response:
        key, rec = self._key_of(req)
        if req.content_type != JSON or not isinstance(req.json, dict):
            raise _error(400, "The request body must be JSON.")
        try:
            body = _chat.check_chat(req.json)
        except _chat.BodyError as exc:
            raise _error(400, str(exc)) from None
        model = next((m for m in self.models if m["id"] == body["model"]), None)
        if model is None:
            raise _error(400, f"{body['model']} is not a valid model ID")
        if "text" not in model["architecture"]["output_modalities"]:
            raise _error(400, f"{body['model']} does not support chat completions")
        if body.get("tools") and "tools" not in model["supported_parameters"]:
            raise _error(404, "No endpoints found that support tool use.")
        with self._lock:
            if rec.limit is not None and rec.usage + self.price_per_call > rec.limit + 1e-9:
                raise _error(402, "This request requires more credits, or fewer max_tokens. Add credits or raise "
                                  "the key's limit at https://openrouter.ai/settings/keys")
            rec.usage = round(rec.usage + self.price_per_call, 6)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return Response(200, content_type="text/event-stream",
                            stream=_chat.chat_stream(model["id"], self.reply_text, include_usage))
        answer = _chat.chat_answer(model["id"], self.reply_text)
        answer["provider"] = "FakeProvider"
        return json_response(200, answer)


def main(argv: list[str] | None = None) -> int:
    """Run the fake by hand: ``python -m oauth_core.testing.fake_openrouter [--port N]``."""
    import argparse

    parser = argparse.ArgumentParser(description="A fake openrouter.ai on 127.0.0.1, for trying oauth-hub.")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free one)")
    args = parser.parse_args(argv)
    fake = FakeOpenRouter(port=args.port).start()
    print(f"FakeOpenRouter on {fake.issuer}; [providers.openrouter]:")
    for key, value in fake.provider_settings().items():
        print(f'{key} = "{value}"')
    serve_until_interrupted(fake)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
