"""Which models the gateway offers, and which provider answers a model name.

The models are the ones each signed-in provider listed at login
(``<provider>_models.json``: entry name → entry with the upstream ``name``), so only
models the account's plan allows are listed or routed. A client may name a model three
ways, tried in this order:

1. ``<provider>/<model>``, LiteLLM's convention (``chatgpt/gpt-5``);
2. an exported entry name (``chatgpt-gpt-5``), as ``oauth-hub export`` writes them;
3. the bare upstream id (``gpt-5``), when exactly one signed-in provider has it.

The files are re-read when they change on disk (a new login while serve runs is seen
at the next request), at the cost of one ``stat`` per provider and request.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import OAuthHubError
from ..store import Store, read_json


class UnknownModel(OAuthHubError):
    """No signed-in provider offers the model the client named."""


@dataclass
class Route:
    provider: str
    model: str  # the upstream model id
    entry: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Listing:
    signature: tuple[int, int] | None
    entries: dict[str, dict[str, Any]]


class Catalog:
    """Model names → routes, over the model files of every signed-in provider."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._listings: dict[str, _Listing] = {}
        self._signed_in: tuple[int | None, list[str]] = (None, [])

    def _entries(self, provider: str) -> dict[str, dict[str, Any]]:
        path = self.store.models_path(provider)
        try:
            st = os.stat(path)
            signature: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except OSError:
            signature = None
        cached = self._listings.get(provider)
        if cached is not None and cached.signature == signature:
            return cached.entries
        try:
            data = read_json(path) if signature is not None else None
        except OAuthHubError:
            data = None
        entries = {k: v for k, v in (data or {}).items()
                   if isinstance(v, dict) and isinstance(v.get("name"), str)} if isinstance(data, dict) else {}
        self._listings[provider] = _Listing(signature, entries)
        return entries

    def providers(self) -> list[str]:
        """Signed-in providers; the home is listed again only when its directory changed."""
        try:
            signature: int | None = os.stat(self.store.home).st_mtime_ns
        except OSError:
            return []
        if signature != self._signed_in[0]:
            self._signed_in = (signature, self.store.signed_in_providers())
        return self._signed_in[1]

    def models(self, provider: str) -> list[Route]:
        """The provider's models, in the order its listing gave them, one per upstream id."""
        seen: dict[str, Route] = {}
        for entry in self._entries(provider).values():
            seen.setdefault(entry["name"], Route(provider, entry["name"], entry))
        return list(seen.values())

    def resolve(self, name: str, eligible: list[str] | None = None) -> Route:
        """The route for the model name a client sent; :class:`UnknownModel` when none fits."""
        providers = eligible if eligible is not None else self.providers()
        head, slash, tail = name.partition("/")
        if slash and head in providers:
            for route in self.models(head):
                if route.model == tail:
                    return route
            known = ", ".join(f"{head}/{r.model}" for r in self.models(head)) or "none listed"
            raise UnknownModel(f"{head} does not offer the model {tail!r} to this account (its models: {known}). "
                               f"Run `oauth-hub login {head}` to list them again.")
        for provider in providers:
            entry = self._entries(provider).get(name)
            if entry is not None:
                return Route(provider, entry["name"], entry)
        found = [r for p in providers for r in self.models(p) if r.model == name]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            options = " or ".join(f"{r.provider}/{r.model}" for r in found)
            raise UnknownModel(f"Several providers offer {name!r}: name one, as {options}.")
        listed = ", ".join(f"{p}/…" for p in providers) or "none: run `oauth-hub login PROVIDER` first"
        raise UnknownModel(f"No signed-in provider offers the model {name!r}. Name it as <provider>/<model> "
                           f"(providers: {listed}); GET /v1/models lists them all.")
