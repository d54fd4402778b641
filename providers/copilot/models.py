"""Which Copilot models an agent tool can use, and what each one supports.

``GET {api}/models`` lists everything the plan knows about: embedding models, models the
editors hide from their picker (used for commit messages and such), and models an
organisation's policy switched off or that wait for the person to accept their terms
on github.com. The rule here is Zed's and the language server's: a chat model, shown in
the picker, whose policy (if any) is ``enabled``. What each model supports comes from
its ``capabilities`` and ``supported_endpoints``, which say which of the three APIs the
Copilot API serves it through (``/chat/completions``, ``/responses``,
``/v1/messages``; some clients write the Responses one as ``/v1/responses``).
"""

from __future__ import annotations

from typing import Any

#: supported_endpoints value → the API name model entries use (oauth_core.exporters' APIS).
ENDPOINT_APIS = {
    "/chat/completions": "chat_completions",
    "/v1/chat/completions": "chat_completions",
    "/responses": "responses",
    "/v1/responses": "responses",
    "/v1/messages": "messages",
}
#: Which API an entry names when a model has several: the one most tools speak first.
API_PREFERENCE = ("chat_completions", "responses", "messages")


def usable(model: Any) -> bool:
    """A chat model shown in the editors' picker and enabled for this account."""
    if not isinstance(model, dict) or not isinstance(model.get("id"), str):
        return False
    capabilities = model.get("capabilities") if isinstance(model.get("capabilities"), dict) else {}
    policy = model.get("policy") if isinstance(model.get("policy"), dict) else {}
    return (capabilities.get("type") == "chat" and model.get("model_picker_enabled") is True
            and policy.get("state", "enabled") == "enabled" and bool(apis(model)))


def apis(model: dict[str, Any]) -> list[str]:
    """The APIs the model is served through, in :data:`API_PREFERENCE` order.

    A model that lists no endpoints at all (older answers) is a Chat Completions model.
    """
    listed = model.get("supported_endpoints")
    if not isinstance(listed, list):
        return ["chat_completions"]
    found = {ENDPOINT_APIS[e] for e in listed if isinstance(e, str) and e in ENDPOINT_APIS}
    return [api for api in API_PREFERENCE if api in found]


def describe(model: dict[str, Any]) -> dict[str, Any]:
    """The facts about one model that ``list_models`` passes on to its entry."""
    capabilities = model.get("capabilities") if isinstance(model.get("capabilities"), dict) else {}
    limits = capabilities.get("limits") if isinstance(capabilities.get("limits"), dict) else {}
    supports = capabilities.get("supports") if isinstance(capabilities.get("supports"), dict) else {}
    billing = model.get("billing") if isinstance(model.get("billing"), dict) else {}
    context = limits.get("max_context_window_tokens")
    output = limits.get("max_output_tokens")
    return {
        "id": model["id"],
        "display_name": model.get("name") if isinstance(model.get("name"), str) else model["id"],
        "vendor": model.get("vendor"),
        "apis": apis(model),
        "supported_endpoints": [e for e in model.get("supported_endpoints") or [] if isinstance(e, str)],
        "context_length": context if isinstance(context, int) and not isinstance(context, bool) else None,
        "max_output_tokens": output if isinstance(output, int) and not isinstance(output, bool) else None,
        "supports": {
            "streaming": bool(supports.get("streaming")),
            "tools": bool(supports.get("tool_calls")),
            "parallel_tool_calls": bool(supports.get("parallel_tool_calls")),
            "vision": bool(supports.get("vision")),
            "structured_outputs": bool(supports.get("structured_outputs")),
            "reasoning_effort": [e for e in supports.get("reasoning_effort") or [] if isinstance(e, str)],
        },
        "premium": bool(billing.get("is_premium")),
        "multiplier": billing.get("multiplier") if isinstance(billing.get("multiplier"), (int, float)) else None,
        "preview": bool(model.get("preview")),
    }
