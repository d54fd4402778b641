"""Which models the gateway offers, and which provider answers a model name.

The models are the ones each signed-in account listed at login
(``<record>_models.json``: entry name → entry with the upstream ``name``), so only
models the account's plan allows are listed or routed. A client may name a model four
ways, tried in this order:

1. ``<provider>@<account>/<model>`` (``chatgpt@work/gpt-5``): that account;
2. ``<provider>/<model>``, LiteLLM's convention (``chatgpt/gpt-5``): the provider's
   default account;
3. an exported entry name (``chatgpt-gpt-5``, ``chatgpt-work-gpt-5``), as ``oauth-hub
   export`` and ``login`` name them (the default account's entries carry no account name);
4. the bare upstream id (``gpt-5``), when exactly one signed-in provider has it (its
   default account).

The files are re-read when they change on disk (a new login while serve runs is seen
at the next request), at the cost of one ``stat`` per provider and request.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import OAuthHubError
from ..store import ACCOUNT_SEP, MAIN_ACCOUNT, Store, read_json, record_name


class UnknownModel(OAuthHubError):
    """No signed-in provider offers the model the client named."""


@dataclass
class Route:
    provider: str
    model: str  # the upstream model id
    entry: dict[str, Any] = field(default_factory=dict)
    account: str = MAIN_ACCOUNT

    def name(self, default: bool) -> str:
        """How ``GET /v1/models`` lists it: ``chatgpt/gpt-5`` (default account), ``chatgpt@work/gpt-5``."""
        owner = self.provider if default else f"{self.provider}{ACCOUNT_SEP}{self.account}"
        return f"{owner}/{self.model}"


@dataclass
class _Listing:
    signature: tuple[int, int] | None
    entries: dict[str, dict[str, Any]]


class Catalog:
    """Model names → routes, over the model files of every signed-in account."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._listings: dict[str, _Listing] = {}
        self._signed_in: tuple[int | None, list[tuple[str, str]]] = (None, [])

    def _entries(self, provider: str, account: str = MAIN_ACCOUNT) -> dict[str, dict[str, Any]]:
        record = record_name(provider, account)
        path = self.store.models_path(record)
        try:
            st = os.stat(path)
            signature: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except OSError:
            signature = None
        cached = self._listings.get(record)
        if cached is not None and cached.signature == signature:
            return cached.entries
        try:
            data = read_json(path) if signature is not None else None
        except OAuthHubError:
            data = None
        entries = {k: v for k, v in (data or {}).items()
                   if isinstance(v, dict) and isinstance(v.get("name"), str)} if isinstance(data, dict) else {}
        self._listings[record] = _Listing(signature, entries)
        return entries

    def records(self) -> list[tuple[str, str]]:
        """``(provider, account)`` of every sign-in; the home is listed again only when its directory changed."""
        try:
            signature: int | None = os.stat(self.store.home).st_mtime_ns
        except OSError:
            return []
        if signature != self._signed_in[0]:
            self._signed_in = (signature, self.store.records())
        return self._signed_in[1]

    def providers(self) -> list[str]:
        """Signed-in providers (each once, however many accounts it has)."""
        return list(dict.fromkeys(provider for provider, _ in self.records()))

    def accounts(self, provider: str) -> list[str]:
        return [account for name, account in self.records() if name == provider]

    def default_account(self, provider: str) -> str:
        return self.store.default_account(provider)

    def models(self, provider: str, account: str | None = None) -> list[Route]:
        """An account's models (default: the default account's), in its listing's order, one per upstream id."""
        account = self.default_account(provider) if account is None else account
        seen: dict[str, Route] = {}
        for entry in self._entries(provider, account).values():
            seen.setdefault(entry["name"], Route(provider, entry["name"], entry, account))
        return list(seen.values())

    def resolve(self, name: str, eligible: list[str] | None = None) -> Route:
        """The route for the model name a client sent; :class:`UnknownModel` when none fits."""
        providers = eligible if eligible is not None else self.providers()
        head, slash, tail = name.partition("/")
        owner, at, account = head.partition(ACCOUNT_SEP)
        if slash and owner in providers:
            if at and account not in self.accounts(owner):
                others = ", ".join(self.accounts(owner))
                raise UnknownModel(f"{owner} has no account {account!r} here (its accounts: {others}). Run "
                                   f"`oauth-hub login {owner} --account {account}` to add it.")
            chosen = account if at else self.default_account(owner)
            routes = self.models(owner, chosen)
            for route in routes:
                if route.model == tail:
                    return route
            known = ", ".join(f"{head}/{r.model}" for r in routes) or "none listed"
            target = owner if not at else f"{owner} --account {account}"
            raise UnknownModel(f"{head} does not offer the model {tail!r} to this account (its models: {known}). "
                               f"Run `oauth-hub login {target}` to list them again.")
        for provider, acct in self.records():
            if provider not in providers:
                continue
            entry = self._entries(provider, acct).get(name)
            if entry is not None:
                return Route(provider, entry["name"], entry, acct)
        found = [r for p in providers for r in self.models(p) if r.model == name]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            options = " or ".join(f"{r.provider}/{r.model}" for r in found)
            raise UnknownModel(f"Several providers offer {name!r}: name one, as {options}.")
        listed = ", ".join(f"{p}/…" for p in providers) or "none: run `oauth-hub login PROVIDER` first"
        raise UnknownModel(f"No signed-in provider offers the model {name!r}. Name it as <provider>/<model> "
                           f"(providers: {listed}); GET /v1/models lists them all.")
