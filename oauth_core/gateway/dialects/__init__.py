"""The client and backend dialects the gateway speaks, each a module with the same functions.

A dialect module provides ``NAME``; ``read_request`` / ``write_request`` (request body
↔ :class:`~oauth_core.gateway.neutral.Conversation`); ``read_reply`` / ``write_reply``
(whole answer ↔ :class:`~oauth_core.gateway.neutral.Reply`); ``StreamReader`` (backend
SSE events → neutral events) and ``StreamWriter(request)`` (neutral events → the SSE
bytes a client expects); and ``error_body(status, message)``, its error envelope.

=============  =====================================  ==================================
name           API                                    client path
=============  =====================================  ==================================
``chat``       OpenAI Chat Completions                ``POST /v1/chat/completions``
``responses``  OpenAI Responses                       ``POST /v1/responses``
``messages``   Anthropic Messages                     ``POST /v1/messages``
=============  =====================================  ==================================
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

from . import chat, messages, responses

DIALECTS: dict[str, ModuleType] = {chat.NAME: chat, responses.NAME: responses, messages.NAME: messages}
#: The gateway's client-facing paths (under ``/v1``) and the dialect each speaks.
CLIENT_PATHS = {"/chat/completions": chat.NAME, "/responses": responses.NAME, "/messages": messages.NAME}


def get(name: str) -> ModuleType:
    return DIALECTS[name]


def error_message(body: bytes, status: int) -> str:
    """The human message in a backend's error body, whatever its shape.

    Seen in the wild: ``{"error": {"message"}}`` (OpenAI, Anthropic), ``{"detail": "…"}``
    (the ChatGPT backend, FastAPI), ``{"detail": {"message"}}``, ``{"message"}``, and
    plain text or HTML from a proxy in between.
    """
    try:
        data: Any = json.loads(body.decode("utf-8", "replace")) if body else None
    except ValueError:
        data = None
    for candidate in (data, data.get("error") if isinstance(data, dict) else None,
                      data.get("detail") if isinstance(data, dict) else None):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
        if isinstance(candidate, dict):
            for key in ("message", "detail", "error_description"):
                if isinstance(candidate.get(key), str) and candidate[key].strip():
                    return candidate[key].strip()
    text = body.decode("utf-8", "replace").strip() if body else ""
    if text and not text.startswith("<") and len(text) <= 500:
        return text
    return f"The backend answered HTTP {status}."
