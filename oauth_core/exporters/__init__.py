"""Exporters: a provider's model entries, written into another tool's configuration.

A second plugin axis beside providers. A *provider* knows how to sign in and which
models an account may use (``<provider>_models.json``); an *exporter* knows one agent
tool: where its configuration file lives, how a model entry looks there, and how to
add ours to that file and later take them out again without touching anything else.

Exporters are found through the entry-point group ``oauth_hub.exporters`` (name = what
people pass to ``--to``, value = a module with ``@hookimpl`` functions), so built-in
and third-party exporters take the same path. Each gets a plugin manager of its own,
like providers, so every hook is ``firstresult`` and answers for that tool alone.

What the engine does for every exporter (:func:`export_models`):

1. Builds one :class:`ExportModel` per entry the provider wrote (``oauth_source``
   marks them), saying which API the model speaks, where a tool should send requests
   and which environment variable holds the secret. An account with an API key is
   exported *direct* (the provider's API, the key's variable) when the tool speaks the
   model's API; a subscription, whose rotating token and extra headers few tools can
   send, and any model in an API the tool does not speak, is exported *through
   ``oauth-hub serve``* (``http://127.0.0.1:4141/v1``, model ``<provider>/<model>``,
   key in ``OAUTH_HUB_SERVE_KEY``), in the API the tool speaks best: the gateway
   translates. Secrets are never written unless ``include_secrets``.
2. Skips nothing for lack of an API (only a tool that names none gets nothing).
3. Asks the exporter to ``render`` entries and ``merge`` them into the file, parsed in
   its format (JSON, YAML, TOML with comments kept, or the exporter's own ``parse`` and
   ``serialize`` hooks):
   entries it wrote before are replaced, everything else is kept, and an entry of
   someone else's that has the name we wanted wins over ours (reported as a conflict).
4. Keeps a copy of the old file (``<file>.bak-<time>``, same mode), writes the new one
   atomically with the old mode, and records what it wrote in ``exports.json`` in the
   home, so that ``logout`` removes exactly that (:func:`remove_exports`).

Writing an exporter: implement the hooks of :class:`ExporterSpec` in a module and
register it under ``[project.entry-points."oauth_hub.exporters"]``; ``docs/exporters.md``
is the reference. The helpers
:func:`merge_mapping`, :func:`remove_mapping`, :func:`merge_list` and :func:`remove_list`
cover the two common file shapes (a mapping of entries, a list of entries).

The package is split by job, and every public name is importable from here:
:mod:`.hookspecs` (the hooks and what they receive), :mod:`.loading` (finding and
validating exporters), :mod:`.formats` (parsing and writing tools' files),
:mod:`.merge` (helpers for exporter authors), :mod:`.export` (the export itself) and
:mod:`.records` (``exports.json`` and the removal at logout).
"""

from __future__ import annotations

from .export import (
    DEFAULT_EXPORTER,
    STORED_FORMAT,
    ExportResult,
    build_export_models,
    entry_api,
    export_models,
)
from .formats import BUILT_IN_FORMATS, backup_file, dump_document, parse_document, write_file
from .hookspecs import (
    API_CHAT,
    API_MESSAGES,
    API_RESPONSES,
    APIS,
    MARKER_KEY,
    PROJECT,
    ExporterSpec,
    ExportModel,
    ExportOptions,
    hookimpl,
    hookspec,
)
from .loading import (
    GROUP,
    Exporter,
    ExporterLoadError,
    ExporterNotFound,
    exporter_names,
    inspect_exporters,
    load_exporter,
    register_exporter,
    unregister_exporter,
)
from .merge import marked, merge_list, merge_mapping, remove_list, remove_mapping, secret_or, serve_note
from .records import RECORD_FILE, exported, remove_exports

__all__ = [
    "APIS", "API_CHAT", "API_MESSAGES", "API_RESPONSES", "BUILT_IN_FORMATS", "DEFAULT_EXPORTER", "ExportModel",
    "ExportOptions", "ExportResult", "Exporter", "ExporterLoadError", "ExporterNotFound", "ExporterSpec", "GROUP",
    "MARKER_KEY", "PROJECT", "RECORD_FILE", "STORED_FORMAT", "backup_file", "build_export_models", "dump_document",
    "entry_api", "export_models", "exported", "exporter_names", "hookimpl", "hookspec", "inspect_exporters",
    "load_exporter", "marked", "merge_list", "merge_mapping", "parse_document", "register_exporter",
    "remove_exports", "remove_list", "remove_mapping", "secret_or", "serve_note", "unregister_exporter",
    "write_file",
]
