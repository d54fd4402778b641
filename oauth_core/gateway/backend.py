"""What the gateway sends a backend, as a provider's ``gateway_request`` hook sees and changes it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class BackendRequest:
    """One request on its way to the backend.

    ``body`` is already in the backend's ``dialect`` (translated when the client spoke
    another); ``path`` is relative to the provider's upstream base. ``headers`` are sent
    over the provider's authentication headers (``request_headers`` hook), so a hook can
    add or override any. ``client_headers`` (lower-case names, the local key removed),
    ``client_dialect`` and ``client_stream`` describe the caller, for hooks that merge a
    client's header (a beta list) or need to know what was asked.
    """

    dialect: str
    path: str
    model: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    client_headers: Mapping[str, str] = field(default_factory=dict)
    client_dialect: str = ""
    client_stream: bool = False

    @property
    def streams(self) -> bool:
        """Whether the backend will answer with a stream (the body asks for one)."""
        return self.body.get("stream") is True
