"""Which OpenAI models are chat models, and how long their context is.

``/v1/models`` lists every model the key can call: embeddings, speech, images,
moderation and realtime ones included. Agent tools need chat (or Responses) models, so
the list is filtered by name. Context lengths are not in that answer; the known ones are
kept here and anything else gets :data:`DEFAULT_CONTEXT`.
"""

from __future__ import annotations

import re

DEFAULT_CONTEXT = 128_000

_CHAT = re.compile(r"^(gpt-|o1|o3|o4|chatgpt-|codex-)")
_NOT_CHAT = re.compile(
    r"(embedding|whisper|tts|dall-e|image|moderation|realtime|audio|transcribe|search-preview|"
    r"babbage|davinci|instruct|computer-use)"
)

# Longest prefix wins, so "gpt-4o-mini" is looked up before "gpt-4o".
KNOWN_CONTEXT: dict[str, int] = {
    "gpt-5": 400_000,
    "gpt-5-codex": 400_000,
    "codex-mini": 200_000,
    "gpt-4.1": 1_047_576,
    "gpt-4o": 128_000,
    "gpt-4o-mini": 128_000,
    "chatgpt-4o": 128_000,
    "gpt-4-turbo": 128_000,
    "gpt-4": 8_192,
    "gpt-3.5-turbo": 16_385,
    "o1": 200_000,
    "o1-mini": 128_000,
    "o3": 200_000,
    "o3-mini": 200_000,
    "o4-mini": 200_000,
}


def is_chat_model(model_id: str) -> bool:
    """True for models an agent tool can chat with."""
    return bool(_CHAT.match(model_id)) and not _NOT_CHAT.search(model_id)


def context_length(model_id: str) -> int:
    """The context window for ``model_id``: the longest known prefix, else the default."""
    best = ""
    for prefix in KNOWN_CONTEXT:
        if model_id.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return KNOWN_CONTEXT[best] if best else DEFAULT_CONTEXT
