"""Server-sent events: an incremental reader for backend streams and the writer for client streams.

The backend's bytes arrive in arbitrary pieces (an event can be split across reads,
or many can share one), so the reader keeps the unfinished tail between calls.
It follows the WHATWG event-stream rules the dialects rely on: ``event:`` and
``data:`` fields (several data lines joined by newlines), comments ignored, an empty
line ends an event, and CR LF or LF line ends.
"""

from __future__ import annotations

import json
from typing import Any


class SSEReader:
    """Feed bytes, get ``(event name, data)`` pairs for each complete event."""

    def __init__(self) -> None:
        self._tail = b""
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        buffer = self._tail + chunk
        lines = buffer.split(b"\n")
        self._tail = lines.pop()
        out: list[tuple[str, str]] = []
        for raw in lines:
            line = raw[:-1] if raw.endswith(b"\r") else raw
            if not line:
                if self._data or self._event:
                    out.append((self._event or "message", "\n".join(self._data)))
                self._event, self._data = "", []
                continue
            if line.startswith(b":"):
                continue
            name, _, value = line.partition(b":")
            if value.startswith(b" "):
                value = value[1:]
            text = value.decode("utf-8", "replace")
            if name == b"data":
                self._data.append(text)
            elif name == b"event":
                self._event = text
        return out

    def close(self) -> list[tuple[str, str]]:
        """Events left when the stream ends without a final blank line."""
        out = self.feed(b"\n\n") if self._tail or self._data else []
        return out


def event(name: str | None, data: Any) -> bytes:
    """One event on the wire; ``data`` is JSON-encoded unless it is already a string."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {text}\n\n".encode()
