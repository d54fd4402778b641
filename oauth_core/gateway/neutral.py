"""The neutral form: one conversation, one reply and one stream of events, whatever the dialect.

Three client dialects (OpenAI Chat Completions, OpenAI Responses, Anthropic Messages)
times three backend dialects would need six translators, each with its own tool-call
and streaming corner cases. Instead every dialect reads into and writes out of the
small set of types here, so a new dialect costs one reader and one writer.

The form keeps what all three can express and what agent tools rely on: system text,
user/assistant turns of text and images, tool calls (id, name, JSON arguments as
text) and tool results, tool definitions and the choice among them, the output limit,
sampling and stop sequences; and on the way back text, tool calls, reasoning summaries,
the stop reason, usage and errors. What only one dialect has (Anthropic cache control,
Responses built-in tools, encrypted reasoning) survives only same-dialect calls, which
are never translated.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

# -- the request -----------------------------------------------------------------------


@dataclass
class Text:
    text: str


@dataclass
class Image:
    """An image as a URL: ``https://…`` or a ``data:<media type>;base64,…`` URL."""

    url: str

    def data(self) -> tuple[str, str] | None:
        """``(media_type, base64 data)`` of a data URL, else None."""
        if not self.url.startswith("data:") or ";base64," not in self.url:
            return None
        head, _, payload = self.url[5:].partition(";base64,")
        return head or "image/png", payload


@dataclass
class ToolCall:
    """The model asks for a tool: ``arguments`` is JSON text, possibly empty."""

    id: str
    name: str
    arguments: str = ""


@dataclass
class ToolResult:
    """A tool's answer to the call ``call_id``, as text."""

    call_id: str
    content: str
    is_error: bool = False


Part = Text | Image | ToolCall | ToolResult


@dataclass
class Message:
    """One turn: ``role`` is "user" (text, images, tool results) or "assistant" (text, tool calls)."""

    role: str
    parts: list[Part] = field(default_factory=list)

    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, Text))


@dataclass
class Tool:
    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass
class Conversation:
    """A request in neutral form.

    ``tool_choice``: None (the backend's default), "auto", "none", "required", or the
    name of the one tool that must be called, as ``{"name": …}``.
    """

    model: str
    messages: list[Message] = field(default_factory=list)
    system: list[str] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    tool_choice: str | dict[str, str] | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    reasoning_effort: str | None = None
    stream: bool = False


# -- the reply ---------------------------------------------------------------------------

#: Why a reply ended: "stop" (done), "length" (output limit), "tool_calls", "content_filter".
STOP, LENGTH, TOOL_CALLS, CONTENT_FILTER = "stop", "length", "tool_calls", "content_filter"


@dataclass
class Usage:
    """Token counts. ``input_tokens`` includes cached ones, as OpenAI counts them."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass
class Reply:
    """A whole answer: text and tool calls in the order the model produced them."""

    id: str
    model: str
    parts: list[Text | ToolCall] = field(default_factory=list)
    stop_reason: str = STOP
    usage: Usage = field(default_factory=Usage)
    reasoning: str = ""

    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, Text))

    def tool_calls(self) -> list[ToolCall]:
        return [p for p in self.parts if isinstance(p, ToolCall)]


# -- the stream --------------------------------------------------------------------------


@dataclass
class Started:
    id: str
    model: str
    input_tokens: int = 0


@dataclass
class TextDelta:
    text: str


@dataclass
class ReasoningDelta:
    text: str


@dataclass
class ToolCallStarted:
    """Tool call number ``index`` (0, 1, … within this reply) begins."""

    index: int
    id: str
    name: str


@dataclass
class ToolCallDelta:
    index: int
    arguments: str


@dataclass
class Finished:
    stop_reason: str
    usage: Usage | None = None


@dataclass
class Failed:
    """The backend reported an error (mid-stream, or before any output)."""

    status: int
    message: str


Event = Started | TextDelta | ReasoningDelta | ToolCallStarted | ToolCallDelta | Finished | Failed


class Aggregator:
    """Folds a stream of events into a :class:`Reply` (for callers that did not ask to stream)."""

    def __init__(self) -> None:
        self.reply = Reply(id="", model="")
        self.failed: Failed | None = None
        self.finished = False
        self._calls: dict[int, ToolCall] = {}

    def add(self, event: Event) -> None:
        reply = self.reply
        if isinstance(event, Started):
            reply.id, reply.model = event.id, event.model
            reply.usage.input_tokens = event.input_tokens
        elif isinstance(event, TextDelta):
            if reply.parts and isinstance(reply.parts[-1], Text):
                reply.parts[-1].text += event.text
            else:
                reply.parts.append(Text(event.text))
        elif isinstance(event, ReasoningDelta):
            reply.reasoning += event.text
        elif isinstance(event, ToolCallStarted):
            call = ToolCall(event.id, event.name)
            self._calls[event.index] = call
            reply.parts.append(call)
        elif isinstance(event, ToolCallDelta):
            if event.index in self._calls:
                self._calls[event.index].arguments += event.arguments
        elif isinstance(event, Finished):
            self.finished = True
            reply.stop_reason = event.stop_reason
            if event.usage is not None:
                reply.usage = event.usage
        elif isinstance(event, Failed):
            self.failed = event


def events_of(reply: Reply) -> list[Event]:
    """A whole reply as the events that would have streamed it."""
    events: list[Event] = [Started(reply.id, reply.model, reply.usage.input_tokens)]
    if reply.reasoning:
        events.append(ReasoningDelta(reply.reasoning))
    calls = 0
    for part in reply.parts:
        if isinstance(part, Text):
            events.append(TextDelta(part.text))
        else:
            events.append(ToolCallStarted(calls, part.id, part.name))
            if part.arguments:
                events.append(ToolCallDelta(calls, part.arguments))
            calls += 1
    events.append(Finished(reply.stop_reason, reply.usage))
    return events


# -- small helpers the dialects share ------------------------------------------------------


def new_id(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(12)}"


def now() -> int:
    return int(time.time())


def as_text(value: Any) -> str:
    """Text out of the shapes tool results and contents come in (a string, or a list of text parts)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        pieces = []
        for item in value:
            if isinstance(item, str):
                pieces.append(item)
            elif isinstance(item, dict) and isinstance(item.get("text"), str):
                pieces.append(item["text"])
        return "".join(pieces)
    return json.dumps(value)


def as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def parse_arguments(arguments: str) -> dict[str, Any]:
    """Tool arguments as an object (what Messages wants); ``{}`` for empty or broken JSON."""
    if not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {"value": value}
