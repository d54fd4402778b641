"""The exporter hook specifications and what the hooks receive.

An exporter is a module of ``@hookimpl`` functions answering these hooks for one agent
tool. Each exporter gets a plugin manager of its own (see :mod:`.loading`), so every
hook is ``firstresult``: the exporter's module answers for that tool alone.
``docs/exporters.md`` is the reference, with an example per hook; a test fails when a
hook here is missing from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..hookspecs import PROJECT, hookimpl, hookspec

MARKER_KEY = "oauth_source"  # the key that marks our entries, where a tool's format has room for one

# The APIs a model entry can speak (pass-through: a tool must speak the same one).
API_CHAT = "chat_completions"  # POST {base}/chat/completions
API_RESPONSES = "responses"  # POST {base}/responses
API_MESSAGES = "messages"  # POST {base}/v1/messages
APIS = (API_CHAT, API_RESPONSES, API_MESSAGES)

# One marker for every oauth-hub plugin: ``oauth_core.hookimpl`` and
# ``oauth_core.exporters.hookimpl`` are the same object, so an exporter cannot pick the
# wrong one. Providers and exporters still never mix: each plugin gets a plugin manager
# holding only its own group's specs, and pluggy refuses a hook the group does not have.
__all__ = ["API_CHAT", "API_MESSAGES", "API_RESPONSES", "APIS", "MARKER_KEY", "PROJECT", "ExportModel",
           "ExportOptions", "ExporterSpec", "hookimpl", "hookspec"]


# -- what exporters receive and return ---------------------------------------------------


@dataclass
class ExportModel:
    """One model, ready for a tool: where to send requests and how to authenticate.

    ``secret`` is set only when the person asked for secrets in clear
    (``--include-secrets``); otherwise a tool must refer to ``secret_env``.
    """

    provider: str
    key: str  # the entry's name in <provider>_models.json, e.g. "<prefix><model>"
    model: str  # the upstream model id
    api: str  # one of APIS: the API the tool calls (through serve, not always the backend's own)
    # Direct: the provider's API base. Through serve: http://127.0.0.1:PORT/v1 for the OpenAI
    # APIs, http://127.0.0.1:PORT for Messages (whose clients add /v1/messages themselves).
    base_url: str
    secret_env: str  # the environment variable that holds the secret to send
    via_serve: bool
    marker: str  # the value of MARKER_KEY on our entries
    context_length: int | None = None
    headers: dict[str, str] = field(default_factory=dict)  # non-secret headers the upstream needs
    secret: str | None = field(default=None, repr=False)
    # The model name the tool sends: the upstream id (direct), ``<provider>/<model>`` through
    # serve (the gateway's name for it, as GET /v1/models lists it). Empty means ``model``.
    request_model: str = ""

    def __post_init__(self) -> None:
        if not self.request_model:
            self.request_model = self.model
    account: str | None = None  # the provider's account, when it is not the default one

    @property
    def label(self) -> str:
        """``chatgpt``, or ``chatgpt-work`` for another account: for ids a tool shows (one per account)."""
        return self.provider if self.account is None else f"{self.provider}-{self.account}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["secret"] = "…" if self.secret else None
        return data


@dataclass
class ExportOptions:
    """Facts about the export as a whole, for ``render`` and ``instructions``."""

    provider: str
    title: str  # the provider's display name
    marker: str
    serve_url: str  # http://127.0.0.1:PORT, where `oauth-hub serve` listens
    serve_key_env: str
    include_secrets: bool
    account: str | None = None  # the account exported when it is not the provider's default (None: the default)


# -- the hooks an exporter implements --------------------------------------------------------


class ExporterSpec:
    """The exporter hook specifications. Every hook is ``firstresult``."""

    @staticmethod
    @hookspec(firstresult=True)
    def exporter_info() -> dict[str, Any]:
        """Describe the tool. Required.

        Return a dict with ``title`` (the tool's name), ``format`` (how its file is
        parsed and written: ``"json"``, ``"yaml"`` or ``"toml"`` are built in; any other
        name needs the :meth:`parse` and :meth:`serialize` hooks), ``apis`` (the subset
        of :data:`APIS` the tool can call, most preferred first) and optionally
        ``description`` and ``serve_apis``.

        A model whose API is in ``apis`` is exported as it is (direct when the account
        has an API key). Any other goes through ``oauth-hub serve``, whose ``/v1``
        speaks every API for every model: it keeps its own API when the tool speaks it,
        else it gets the tool's first. ``serve_apis`` (default ``apis``) narrows the
        choice for models that go through serve, for a tool that calls one API better
        than another. A model is skipped only when the tool lists no API at all.
        """

    @staticmethod
    @hookspec(firstresult=True)
    def parse(text: str) -> Any:
        """Parse the tool's file, for a format that is not built in (or to override one).

        ``text`` is never empty (an empty file is no document). Return what ``merge``
        and ``remove`` work on. Raise ``ValueError`` when the text is not valid: the
        engine reports the file as unparsable and leaves it untouched.
        """

    @staticmethod
    @hookspec(firstresult=True)
    def serialize(document: Any) -> str:
        """The file's new text for ``document`` (what ``merge`` or ``remove`` returned).

        Implemented together with :meth:`parse`. The engine writes the text atomically
        and keeps a backup of the old file.
        """

    @staticmethod
    @hookspec(firstresult=True)
    def default_path(environ: Mapping[str, str], home: Path) -> str | None:
        """The file the tool reads, given the environment and the user's home directory.

        Return ``None`` when there is no standard place (the person must pass
        ``--output`` or ``--print``). No file access needed: the engine creates it.
        """

    @staticmethod
    @hookspec(firstresult=True)
    def render(models: list[ExportModel], options: ExportOptions) -> dict[str, Any]:
        """The tool's entries for ``models``, keyed by a name unique within its file. Required.

        Mark each entry as ours where the format has room (``MARKER_KEY:
        options.marker``), so ``merge`` and ``remove`` can tell ours from the person's.
        Refer to secrets through ``model.secret_env`` in the tool's own syntax, unless
        ``model.secret`` is set.
        """

    @staticmethod
    @hookspec(firstresult=True)
    def merge(document: Any, entries: dict[str, Any], marker: str) -> tuple[Any, list[str]]:
        """Put ``entries`` into the parsed file ``document`` (``None``: no file yet). Required.

        Remove every entry of ours carrying ``marker`` first (a model that went away
        must not linger), keep everything else, and leave out any entry whose name an
        entry not of ours already has. Return the new document and those left-out names.
        """

    @staticmethod
    @hookspec(firstresult=True)
    def remove(document: Any, keys: list[str] | None, marker: str) -> tuple[Any, list[str]]:
        """Take out our entries named in ``keys`` (and still marked ``marker``). Required.

        Called by ``logout`` (and, with ``keys=None`` meaning "all of ours", to count the
        entries a new export replaces). Return the new document and the names removed;
        leave entries that are not ours alone even when their name is in ``keys``.
        """

    @staticmethod
    @hookspec(firstresult=True)
    def entry_api(entry: dict[str, Any]) -> str | None:
        """Which of :data:`APIS` a stored model entry in this tool's format speaks, or ``None``.

        Asked of the exporter named by :data:`STORED_FORMAT` only, for entries that do not
        say so themselves in ``api``.
        """

    @staticmethod
    @hookspec(firstresult=True)
    def instructions(models: list[ExportModel], options: ExportOptions, path: str | None) -> list[str]:
        """Lines that tell the person what else to do: environment variables, a command to run."""

