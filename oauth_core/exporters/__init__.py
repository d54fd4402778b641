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
   exported *direct* (the provider's API, the key's variable); a subscription, whose
   rotating token and extra headers few tools can send, is exported *through
   ``oauth-hub serve``* (``http://127.0.0.1:4141/<provider>``, key in
   ``OAUTH_HUB_SERVE_KEY``). Secrets are never written unless ``include_secrets``.
2. Drops the models whose API the tool cannot call, and says so.
3. Asks the exporter to ``render`` entries and ``merge`` them into the parsed file:
   entries it wrote before are replaced, everything else is kept, and an entry of
   someone else's that has the name we wanted wins over ours (reported as a conflict).
4. Keeps a copy of the old file (``<file>.bak-<time>``, same mode), writes the new one
   atomically with the old mode, and records what it wrote in ``exports.json`` in the
   home, so that ``logout`` removes exactly that (:func:`remove_exports`).

Writing an exporter: implement the hooks of :class:`ExporterSpec` in a module and
register it under ``[project.entry-points."oauth_hub.exporters"]``. The helpers
:func:`merge_mapping`, :func:`remove_mapping`, :func:`merge_list` and :func:`remove_list`
cover the two common file shapes (a mapping of entries, a list of entries).
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from ..errors import CorruptFileError, OAuthHubError
from ..store import Store, read_json, write_json, write_private

PROJECT = "oauth_hub_exporters"
GROUP = "oauth_hub.exporters"
DEFAULT_EXPORTER = "code_puppy"
STORED_FORMAT = "code_puppy"  # the exporter whose entry format <provider>_models.json uses
RECORD_FILE = "exports.json"
MARKER_KEY = "oauth_source"  # the key that marks our entries, where a tool's format has room for one

# The APIs a model entry can speak (pass-through: a tool must speak the same one).
API_CHAT = "chat_completions"  # POST {base}/chat/completions
API_RESPONSES = "responses"  # POST {base}/responses
API_MESSAGES = "messages"  # POST {base}/v1/messages
APIS = (API_CHAT, API_RESPONSES, API_MESSAGES)

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class ExporterNotFound(OAuthHubError):
    """No installed exporter has that name."""


class ExporterLoadError(OAuthHubError):
    """An exporter is installed but could not be imported, or its hooks are wrong."""
_REQUIRED_HOOKS = ("exporter_info", "render", "merge", "remove")


# -- what exporters receive and return ---------------------------------------------------


@dataclass
class ExportModel:
    """One model, ready for a tool: where to send requests and how to authenticate.

    ``secret`` is set only when the person asked for secrets in clear
    (``--include-secrets``); otherwise a tool must refer to ``secret_env``.
    """

    provider: str
    key: str  # the entry's name in <provider>_models.json, e.g. "<prefix><model>"
    model: str  # the upstream model id, sent in requests
    api: str  # one of APIS
    base_url: str  # the provider's API base (direct) or http://127.0.0.1:PORT/<provider> (via serve)
    secret_env: str  # the environment variable that holds the secret to send
    via_serve: bool
    marker: str  # the value of MARKER_KEY on our entries
    context_length: int | None = None
    headers: dict[str, str] = field(default_factory=dict)  # non-secret headers the upstream needs
    secret: str | None = field(default=None, repr=False)

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


@dataclass
class ExportResult:
    """What :func:`export_models` did (or, with ``print_only``, would do)."""

    provider: str
    exporter: str
    tool: str
    path: str | None
    keys: list[str] = field(default_factory=list)  # the entries now in the file that are ours
    models: list[str] = field(default_factory=list)  # the model entries (of <provider>_models.json) exported
    skipped: list[dict[str, str]] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    removed_stale: int = 0
    backup: str | None = None
    written: bool = False
    unchanged: bool = False
    text: str | None = field(default=None, repr=False)  # the file's new content; may hold a secret
    via_serve: bool = False
    instructions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("text")
        return data


# -- the hooks an exporter implements --------------------------------------------------------


class ExporterSpec:
    """The exporter hook specifications. Every hook is ``firstresult``."""

    @staticmethod
    @hookspec(firstresult=True)
    def exporter_info() -> dict[str, Any]:
        """Describe the tool. Required.

        Return a dict with ``title`` (the tool's name), ``format`` (``"json"`` or
        ``"yaml"``: how its file is parsed and written), ``apis`` (the subset of
        :data:`APIS` the tool can call; other models are skipped with a note) and
        optionally ``description``.
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
    def remove(document: Any, keys: list[str], marker: str) -> tuple[Any, list[str]]:
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


# -- finding and loading exporters -------------------------------------------------------------

_registered: dict[str, Any] = {}


def register_exporter(name: str, plugin: Any) -> None:
    """Make ``plugin`` (a module or object with exporter hookimpls) available as ``--to name``."""
    _registered[name] = plugin


def unregister_exporter(name: str) -> None:
    _registered.pop(name, None)


def _entry_points() -> dict[str, Any]:
    """Exporter entry points by name; as for providers, a built-in name wins over a third party's."""
    from ..entrypoints import entry_points
    from ..plugins import _is_builtin

    found: dict[str, Any] = {}
    for ep in entry_points(group=GROUP):
        if ep.name not in found or (_is_builtin(ep) and not _is_builtin(found[ep.name])):
            found[ep.name] = ep
    return found


def exporter_names() -> list[str]:
    """Every installed exporter name, from metadata only (nothing is imported)."""
    return sorted(set(_entry_points()) | set(_registered))


class Exporter:
    """One loaded exporter: its plugin manager and what ``exporter_info`` said."""

    def __init__(self, name: str, pm: Any, info: dict[str, Any]) -> None:
        self.name = name
        self.pm = pm
        self.info = info

    def __repr__(self) -> str:
        return f"Exporter({self.name!r})"

    @property
    def title(self) -> str:
        return str(self.info.get("title") or self.name)

    @property
    def format(self) -> str:
        return str(self.info["format"])

    @property
    def apis(self) -> tuple[str, ...]:
        return tuple(self.info.get("apis") or ())

    def call(self, hook: str, *, required: bool = True, **kwargs: Any) -> Any:
        caller = getattr(self.pm.hook, hook)
        if not caller.get_hookimpls():
            if required:
                raise OAuthHubError(f"Exporter {self.name!r} does not implement the {hook!r} hook.")
            return None
        return caller(**kwargs)


def load_exporter(name: str) -> Exporter:
    """Import exporter ``name``, check its hooks, and read its description."""
    if not _NAME.match(name or ""):
        raise ExporterNotFound(f"{name!r} is not a valid exporter name. Known exporters: {_known()}.")
    if name in _registered:
        plugin, where = _registered[name], repr(_registered[name])
    else:
        eps = _entry_points()
        if name not in eps:
            raise ExporterNotFound(f"Unknown exporter {name!r}. Known exporters: {_known()}.")
        where = eps[name].value
        try:
            plugin = eps[name].load()
        except Exception as exc:  # a broken third-party exporter must not take the CLI down
            raise ExporterLoadError(
                f"Exporter {name!r} ({where}) failed to import: {type(exc).__name__}: {exc}") from None
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(ExporterSpec)
    try:
        pm.register(plugin, name=name)
        pm.check_pending()
    except Exception as exc:
        raise ExporterLoadError(f"Exporter {name!r} ({where}) is invalid: {exc}") from None
    missing = [hook for hook in _REQUIRED_HOOKS if not getattr(pm.hook, hook).get_hookimpls()]
    if missing:
        raise ExporterLoadError(f"Exporter {name!r} ({where}) does not implement {', '.join(missing)}.")
    info = pm.hook.exporter_info() or {}
    if info.get("format") not in _FORMATS or not set(info.get("apis") or ()) <= set(APIS):
        raise ExporterLoadError(f"Exporter {name!r} ({where}) describes itself wrongly: format must be one of "
                                f"{', '.join(_FORMATS)} and apis a subset of {', '.join(APIS)}.")
    return Exporter(name, pm, dict(info))


def _known() -> str:
    return ", ".join(exporter_names()) or "none installed"


def inspect_exporters() -> list[dict[str, Any]]:
    """Every exporter with its title, format and APIs, or the reason it failed to load."""
    rows = []
    for name in exporter_names():
        row: dict[str, Any] = {"name": name, "title": None, "format": None, "apis": [], "description": None,
                               "default_path": None, "error": None}
        try:
            tool = load_exporter(name)
            row.update(title=tool.title, format=tool.format, apis=list(tool.apis),
                       description=tool.info.get("description"),
                       default_path=tool.call("default_path", required=False, environ=dict(os.environ),
                                              home=Path.home()))
        except OAuthHubError as exc:
            row["error"] = str(exc)
        rows.append(row)
    return rows


# -- building the models ---------------------------------------------------------------------


def _env_ref(value: Any) -> str | None:
    """``"$NAME"`` (how model entries refer to a secret) -> ``"NAME"``."""
    if isinstance(value, str) and re.fullmatch(r"\$[A-Za-z_][A-Za-z0-9_]*", value):
        return value[1:]
    return None


def entry_api(entry: Mapping[str, Any]) -> str:
    """Which API a stored model entry speaks.

    Its ``api`` key when it names one of :data:`APIS`; otherwise what its ``type`` means
    in the format the stored entries are in, which is Code Puppy's: the exporter for that
    format answers (its ``entry_api`` hook). Unknown types count as Chat Completions,
    the API most OpenAI-compatible endpoints speak.
    """
    declared = entry.get("api")
    if declared in APIS:
        return str(declared)
    global _stored_format
    if _stored_format is None:
        try:
            _stored_format = load_exporter(STORED_FORMAT)
        except OAuthHubError:
            return API_CHAT
    api = _stored_format.call("entry_api", required=False, entry=dict(entry))
    return api if api in APIS else API_CHAT


_stored_format: Exporter | None = None


def build_export_models(
    provider: str,
    *,
    home: str | Path | None = None,
    via_serve: bool = False,
    serve_port: int | None = None,
    include_secrets: bool = False,
) -> tuple[list[ExportModel], ExportOptions]:
    """One :class:`ExportModel` per model entry the provider wrote, and the export's options.

    Direct when the account has an API key and the entry names the variable that holds
    it; through ``oauth-hub serve`` otherwise (or when ``via_serve``).
    """
    from ..provider import Provider
    from ..serve import DEFAULT_PORT, KEY_ENV, local_base_url, stable_key, upstream_base
    from ..tokens import get_credentials, known_name

    store = Store(home)
    known_name(provider, store)
    loaded = Provider.load(provider, store)
    credentials = get_credentials(provider, home=store.home, refresh=False)
    marker = str(loaded.settings["oauth_source"])
    path = store.models_path(provider)
    entries = read_json(path)
    if entries is not None and not isinstance(entries, dict):
        raise CorruptFileError(f"{path} does not hold a JSON object; it was left untouched.")
    own = [(k, e) for k, e in (entries or {}).items() if isinstance(e, dict) and e.get("oauth_source") == marker]
    if not own:
        raise OAuthHubError(f"There are no {provider} model entries to export. Run `oauth-hub login {provider}`: "
                            "it lists the models the account can use.")
    serve_url = local_base_url(serve_port or DEFAULT_PORT)
    direct_base = upstream_base(loaded, credentials, store) if credentials.api_key and not via_serve else None
    models = []
    for key, entry in own:
        endpoint = entry.get("custom_endpoint") if isinstance(entry.get("custom_endpoint"), dict) else {}
        env = _env_ref(endpoint.get("api_key"))
        direct = direct_base is not None and env is not None
        headers = {}
        if direct and isinstance(endpoint.get("headers"), dict):
            headers = {str(k): v for k, v in endpoint["headers"].items()
                       if isinstance(v, str) and v and _env_ref(v) is None}
        secret = None
        if include_secrets:
            secret = credentials.api_key if direct else stable_key(store.home)
        context = entry.get("context_length")
        base_url, secret_env = (direct_base, env) if direct_base is not None and env is not None else (
            f"{serve_url}/{provider}", KEY_ENV)
        models.append(ExportModel(
            provider=provider, key=str(key), model=str(entry.get("name") or key), api=entry_api(entry),
            base_url=base_url, secret_env=secret_env, via_serve=not direct, marker=marker,
            context_length=context if isinstance(context, int) and not isinstance(context, bool) else None,
            headers=headers, secret=secret,
        ))
    options = ExportOptions(provider=provider, title=loaded.title, marker=marker, serve_url=serve_url,
                            serve_key_env=KEY_ENV, include_secrets=include_secrets)
    return models, options


# -- export ------------------------------------------------------------------------------------


def export_models(
    provider: str,
    exporter: str = DEFAULT_EXPORTER,
    *,
    output: str | Path | None = None,
    print_only: bool = False,
    include_secrets: bool = False,
    via_serve: bool = False,
    serve_port: int | None = None,
    home: str | Path | None = None,
) -> ExportResult:
    """Write (or, with ``print_only``, only show) ``provider``'s models in ``exporter``'s format.

    See the module docstring for the steps. ``print_only`` writes nothing at all: not the
    tool's file, not a backup, not the record.
    """
    tool = load_exporter(exporter)
    models, options = build_export_models(provider, home=home, via_serve=via_serve, serve_port=serve_port,
                                          include_secrets=include_secrets)
    usable = [m for m in models if m.api in tool.apis]
    result = ExportResult(provider=provider, exporter=tool.name, tool=tool.title, path=None,
                          via_serve=any(m.via_serve for m in usable))
    for m in models:
        if m.api not in tool.apis:
            result.skipped.append({"key": m.key, "model": m.model, "api": m.api,
                                   "reason": f"{tool.title} cannot call the {_API_NAMES[m.api]}"})
    result.models = [m.key for m in usable]
    if result.skipped:
        result.notes.append(_alternatives(tool, {s["api"] for s in result.skipped}))
    entries = tool.call("render", models=usable, options=options) or {}
    target = _target(tool, output)
    if target is None and not print_only:
        raise OAuthHubError(f"{tool.title} has no standard configuration file: pass --output PATH "
                            "(or --print to see the entries).")
    old_text = _read_text(target) if target is not None else None
    document = parse_document(old_text, tool.format, target) if old_text is not None else None
    before = _ours(tool, document, options.marker)
    new_document, conflicts = tool.call("merge", document=document, entries=entries, marker=options.marker)
    result.conflicts = list(conflicts)
    result.keys = [k for k in entries if k not in result.conflicts]
    result.removed_stale = len(before - set(result.keys))
    result.text = dump_document(new_document, tool.format)
    result.path = str(target) if target is not None else None
    result.instructions = list(tool.call("instructions", required=False, models=usable, options=options,
                                         path=result.path) or [])
    if tool.format == "yaml" and old_text and any(line.lstrip().startswith("#") for line in old_text.splitlines()):
        result.notes.append("Comments in the YAML file are not kept when it is rewritten; the backup has them.")
    if print_only:
        return result
    assert target is not None
    if old_text is None and not result.keys:
        result.unchanged = True  # nothing to write and no file to write it to
    elif old_text == result.text:
        result.unchanged = True
    else:
        # A file that now holds a live secret (--include-secrets) is made private, and so
        # is its backup, whatever mode the tool's file had.
        secret_mode = 0o600 if options.include_secrets else None
        if old_text is not None:
            result.backup = str(backup_file(target, mode=secret_mode))
        write_file(target, result.text, mode=secret_mode)
        result.written = True
    _record(Store(home), provider, tool.name, target, result.keys, options.marker)
    return result


_API_NAMES = {API_CHAT: "Chat Completions API", API_RESPONSES: "Responses API", API_MESSAGES: "Messages API"}


def _alternatives(tool: Exporter, apis: set[str]) -> str:
    """Which installed exporters could take the models ``tool`` had to skip."""
    able = []
    for name in exporter_names():
        try:
            other = load_exporter(name)
        except OAuthHubError:
            continue
        if other.name != tool.name and apis <= set(other.apis):
            able.append(name)
    what = " and ".join(_API_NAMES[a] for a in sorted(apis))
    if not able:
        return f"No installed exporter can write models that speak the {what}."
    return f"For models that speak the {what}, use --to {' / '.join(able)}."


def _target(tool: Exporter, output: str | Path | None) -> Path | None:
    """The file to write: ``output`` or the tool's default, absolute, symlinks followed (dotfile managers)."""
    if output is None:
        default = tool.call("default_path", required=False, environ=dict(os.environ), home=Path.home())
        if not default:
            return None
        output = default
    return Path(os.path.realpath(Path(output).expanduser()))


def _ours(tool: Exporter, document: Any, marker: str) -> set[str]:
    """Names of the entries of ours already in ``document`` (to count the ones that go away)."""
    if document is None:
        return set()
    try:
        _, removed = tool.call("remove", document=_copy(document), keys=None, marker=marker)
    except OAuthHubError:
        return set()
    return set(removed or ())


def _copy(document: Any) -> Any:
    return json.loads(json.dumps(document))


# -- files ------------------------------------------------------------------------------------

_FORMATS = ("json", "yaml")


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise OAuthHubError(f"Cannot read {path}: {getattr(exc, 'strerror', None) or exc}.") from None


def parse_document(text: str, fmt: str, path: Path | None = None) -> Any:
    """Parse a tool's file with that format's own parser; empty means no document yet.

    A file that does not parse is reported by name and left exactly as it is.
    """
    if not text.strip():
        return None
    where = str(path) if path is not None else "the file"
    if fmt == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise CorruptFileError(f"{where} is not valid JSON (line {exc.lineno}); it was left untouched. "
                                   "Fix it, or use --print and copy the entries in by hand.") from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        at = f" (line {line + 1})" if line is not None else ""
        raise CorruptFileError(f"{where} is not valid YAML{at}; it was left untouched. "
                               "Fix it, or use --print and copy the entries in by hand.") from None


def dump_document(document: Any, fmt: str) -> str:
    """Serialise a tool's file: JSON with two-space indent, or block-style YAML, in the order given."""
    if document is None:
        return ""
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    import yaml

    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000)


def backup_file(path: Path, mode: int | None = None) -> Path:
    """Copy ``path`` to ``<path>.bak-<YYYYmmdd-HHMMSS>`` with the same mode (or ``mode``); never overwrite."""
    data = path.read_bytes()
    mode = stat.S_IMODE(path.stat().st_mode) if mode is None else mode
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 1000):
        target = path.with_name(f"{path.name}.bak-{stamp}" + (f"-{n}" if n > 1 else ""))
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as handle:
            if os.name == "posix":
                os.fchmod(handle.fileno(), mode)  # the umask must not loosen or tighten it
            handle.write(data)
        return target
    raise OAuthHubError(f"Too many backups of {path} this second; try again.")


def write_file(path: Path, text: str, *, mode: int | None = None) -> None:
    """Write a tool's file atomically, keeping its mode (a new file gets 0600).

    Like the home's files: a temp file in the same directory, fsync, rename, so the tool
    never reads half a file.
    """
    if mode is None:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            mode = 0o600
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(path, text.encode("utf-8"), mode=mode)


# -- the record of what was exported, and logout ----------------------------------------------


def _records(store: Store) -> list[dict[str, Any]]:
    path = store.home / RECORD_FILE
    data = read_json(path)
    if data is None:
        return []
    rows = data.get("exports") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise CorruptFileError(f"{path} is not an export record; it was left untouched. Remove it to start over.")
    return [r for r in rows if isinstance(r, dict)]


def _save_records(store: Store, rows: list[dict[str, Any]]) -> None:
    store.ensure()
    write_json(store.home / RECORD_FILE, {"version": 1, "exports": rows})


def _record(store: Store, provider: str, exporter: str, path: Path, keys: list[str], marker: str) -> None:
    """Remember which entries of ``provider`` are in ``path``; forget the file when none are."""
    from ..credentials import utc_now_iso

    rows = [r for r in _records(store)
            if (r.get("provider"), r.get("exporter"), r.get("path")) != (provider, exporter, str(path))]
    if keys:
        rows.append({"provider": provider, "exporter": exporter, "path": str(path), "keys": list(keys),
                     "marker": marker, "exported_at": utc_now_iso()})
    _save_records(store, rows)


def exported(provider: str | None = None, *, home: str | Path | None = None) -> list[dict[str, Any]]:
    """What ``export`` wrote and has not removed yet (all providers, or one)."""
    return [r for r in _records(Store(home)) if provider is None or r.get("provider") == provider]


def remove_exports(provider: str, *, home: str | Path | None = None) -> dict[str, Any]:
    """Remove from each tool's file exactly the entries ``export`` recorded for ``provider``.

    Called by ``logout``. Entries are removed only while they still carry our marker;
    each changed file is backed up first. A file that cannot be read or parsed is left
    alone and its record kept (a note says so), so a later logout can try again.
    """
    store = Store(home)
    report: dict[str, Any] = {"removed": [], "notes": []}
    try:
        rows = _records(store)
    except OAuthHubError as exc:
        report["notes"].append(str(exc))
        return report
    kept = []
    for row in rows:
        if row.get("provider") != provider:
            kept.append(row)
            continue
        path = Path(str(row.get("path")))
        try:
            tool = load_exporter(str(row.get("exporter")))
            text = _read_text(path)
            if text is None:
                continue  # the file is gone, and our entries with it
            document = parse_document(text, tool.format, path)
            if document is None:
                continue
            new_document, removed = tool.call("remove", document=document, keys=list(row.get("keys") or []),
                                              marker=str(row.get("marker") or ""))
            if removed:
                backup = backup_file(path)
                write_file(path, dump_document(new_document, tool.format))
                report["removed"].append({"exporter": tool.name, "path": str(path), "keys": list(removed),
                                          "backup": str(backup)})
        except OAuthHubError as exc:
            report["notes"].append(f"Could not remove the {row.get('exporter')} entries from {path}: {exc}")
            kept.append(row)
        except OSError as exc:
            report["notes"].append(f"Could not rewrite {path} ({exc.strerror or exc}); its entries are still there.")
            kept.append(row)
    if len(kept) != len(rows):
        _save_records(store, kept)
    return report


# -- helpers for exporters -----------------------------------------------------------------------


def marked(marker: str, key: str = MARKER_KEY) -> Callable[[Any], bool]:
    """A test for 'this entry is ours': a dict whose ``key`` is ``marker``."""
    return lambda entry: isinstance(entry, dict) and entry.get(key) == marker


def _mapping(document: Any, what: str) -> dict[str, Any]:
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise CorruptFileError(f"The {what} does not hold a mapping of entries; it was left untouched.")
    return document


def merge_mapping(document: Any, entries: Mapping[str, Any], is_ours: Callable[[Any], bool],
                  what: str = "file") -> tuple[dict[str, Any], list[str]]:
    """Merge into a ``{name: entry}`` mapping: drop ours, keep the rest, add new entries after them."""
    current = _mapping(document, what)
    merged = {k: v for k, v in current.items() if not is_ours(v)}
    conflicts = [k for k in entries if k in merged]
    merged.update({k: v for k, v in entries.items() if k not in merged})
    return merged, conflicts


def remove_mapping(document: Any, keys: Iterable[str] | None, is_ours: Callable[[Any], bool],
                   what: str = "file") -> tuple[dict[str, Any], list[str]]:
    """Remove our entries (named in ``keys``; ``None``: all of ours) from a mapping."""
    current = _mapping(document, what)
    wanted = None if keys is None else set(keys)
    removed = [k for k, v in current.items() if is_ours(v) and (wanted is None or k in wanted)]
    return {k: v for k, v in current.items() if k not in removed}, removed


def merge_list(items: Any, entries: Mapping[str, Any], name_of: Callable[[Any], Any],
               is_ours: Callable[[Any], bool], what: str = "list") -> tuple[list[Any], list[str]]:
    """Merge into a list of entries named by ``name_of``: drop ours, keep the rest, append new ones."""
    if items is None:
        items = []
    if not isinstance(items, list):
        raise CorruptFileError(f"The {what} is not a list of entries; it was left untouched.")
    kept = [item for item in items if not is_ours(item)]
    taken = {name_of(item) for item in kept}
    conflicts = [k for k in entries if k in taken]
    return kept + [v for k, v in entries.items() if k not in taken], conflicts


def remove_list(items: Any, keys: Iterable[str] | None, name_of: Callable[[Any], Any],
                is_ours: Callable[[Any], bool], what: str = "list") -> tuple[list[Any], list[str]]:
    """Remove our entries (named in ``keys``; ``None``: all of ours) from a list."""
    if items is None:
        return [], []
    if not isinstance(items, list):
        raise CorruptFileError(f"The {what} is not a list of entries; it was left untouched.")
    wanted = None if keys is None else set(keys)
    removed = [name_of(i) for i in items if is_ours(i) and (wanted is None or name_of(i) in wanted)]
    return [i for i in items if not (is_ours(i) and (wanted is None or name_of(i) in wanted))], removed


def secret_or(model: ExportModel, reference: str) -> str:
    """The secret itself when the person asked for it in clear, else the tool-syntax ``reference``."""
    return model.secret if model.secret else reference


def serve_note(models: list[ExportModel], options: ExportOptions) -> list[str]:
    """The lines every exporter shows when some entries go through ``oauth-hub serve``."""
    if not any(m.via_serve for m in models):
        return []
    port = options.serve_url.rsplit(":", 1)[1]
    flag = "" if port == "4141" else f" --port {port}"
    lines = [f"These entries go through `oauth-hub serve` at {options.serve_url}/{options.provider}: "
             f"keep `oauth-hub serve --stable-key{flag}` running."]
    if not options.include_secrets:
        lines.append(f"Give tools its key: export {options.serve_key_env}=\"$(oauth-hub serve --print-key)\"")
    return lines
