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
        hold = b""
        if buffer.endswith(b"\r"):  # maybe half of a CR LF: decide with the next piece
            buffer, hold = buffer[:-1], b"\r"
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        blocks = buffer.split(b"\n\n")
        self._tail = blocks.pop() + hold
        out: list[tuple[str, str]] = []
        for block in blocks:
            for line in block.split(b"\n"):
                self._field(line)
            if self._data or self._event:
                out.append((self._event or "message", "\n".join(self._data)))
            self._event, self._data = "", []
        return out

    def _field(self, line: bytes) -> None:
        if not line or line.startswith(b":"):
            return
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            self._data.append(value.decode("utf-8", "replace"))
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")

    def close(self) -> list[tuple[str, str]]:
        """Events left when the stream ends without a final blank line."""
        out = self.feed(b"\n\n") if self._tail or self._data else []
        return out


def event(name: str | None, data: Any) -> bytes:
    """One event on the wire; ``data`` is JSON-encoded unless it is already a string."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {text}\n\n".encode()
