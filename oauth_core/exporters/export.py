"""The export itself: a provider's model entries, written into one tool's file.

See the package docstring for the steps.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CorruptFileError, OAuthHubError
from ..store import Store, read_json
from .formats import _read_text, backup_file, write_file
from .hookspecs import API_CHAT, API_MESSAGES, APIS, ExportModel, ExportOptions
from .loading import Exporter, load_exporter
from .records import _record

DEFAULT_EXPORTER = "code_puppy"
STORED_FORMAT = "code_puppy"  # the exporter whose entry format <provider>_models.json uses

@dataclass
class ExportResult:
    """What :func:`export_models` did (or, with ``print_only``, would do)."""

    provider: str
    exporter: str
    tool: str
    path: str | None
    account: str | None = None  # the account exported; None: the provider's default account
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
    tool_apis: Sequence[str] | None = None,
    serve_apis: Sequence[str] | None = None,
    account: str | None = None,
) -> tuple[list[ExportModel], ExportOptions]:
    """One :class:`ExportModel` per model entry the provider wrote, and the export's options.

    Direct when the account has an API key, the entry names the variable that holds it,
    and the tool speaks the model's API (``tool_apis``; ``None``: any); through
    ``oauth-hub serve`` otherwise (or when ``via_serve``). Through serve a model keeps
    its API when it is in ``serve_apis`` (default ``tool_apis``), else takes the first
    of them: the gateway's ``/v1`` translates. Without ``tool_apis`` every model keeps
    its own API.

    ``account`` (default: the default account): the default account's entries keep the
    provider's marker and names and ask serve for ``<provider>/<model>`` (so they follow
    ``accounts default``); another account's carry ``<marker>@<account>`` and ask for
    ``<provider>@<account>/<model>``, and always go through ``serve`` unless the secret
    itself is written (``include_secrets``): the environment variables an entry names
    are the same for every account, and one environment holds one value of each.
    """
    from ..provider import Provider
    from ..serve import DEFAULT_PORT, KEY_ENV, local_base_url, stable_key, upstream_base
    from ..store import ACCOUNT_SEP, record_name
    from ..tokens import get_credentials, known_name

    store = Store(home)
    known_name(provider, store)
    account = store.resolve_account(provider, account)
    is_default = account == store.default_account(provider)
    loaded = Provider.load(provider, store)
    credentials = get_credentials(provider, home=store.home, refresh=False, account=account)
    source = str(loaded.settings["oauth_source"])
    marker = source if is_default else f"{source}{ACCOUNT_SEP}{account}"
    route = provider if is_default else f"{provider}{ACCOUNT_SEP}{account}"
    path = store.models_path(record_name(provider, account))
    entries = read_json(path)
    if entries is not None and not isinstance(entries, dict):
        raise CorruptFileError(f"{path} does not hold a JSON object; it was left untouched.")
    own = [(k, e) for k, e in (entries or {}).items() if isinstance(e, dict) and e.get("oauth_source") == source]
    if not own:
        from ..tokens import command_target

        raise OAuthHubError(f"There are no {provider} model entries to export. Run `oauth-hub login "
                            f"{command_target(provider, account)}`: it lists the models the account can use.")
    serve_url = local_base_url(serve_port or DEFAULT_PORT)
    direct_ok = credentials.api_key and not via_serve and (is_default or include_secrets)
    direct_base = upstream_base(loaded, credentials, store) if direct_ok else None
    through = [a for a in (serve_apis if serve_apis is not None else tool_apis) or () if a in APIS]
    models = []
    for key, entry in own:
        endpoint = entry.get("custom_endpoint") if isinstance(entry.get("custom_endpoint"), dict) else {}
        env = _env_ref(endpoint.get("api_key"))
        native = entry_api(entry)
        direct = direct_base is not None and env is not None and (tool_apis is None or native in tool_apis)
        model = str(entry.get("name") or key)
        context = entry.get("context_length")
        common = {"provider": provider, "key": str(key), "model": model, "marker": marker,
                  "account": None if is_default else account,
                  "context_length": context if isinstance(context, int) and not isinstance(context, bool) else None}
        if direct:
            assert direct_base is not None and env is not None
            headers = {str(k): v for k, v in (endpoint.get("headers") or {}).items()
                       if isinstance(v, str) and v and _env_ref(v) is None} \
                if isinstance(endpoint.get("headers"), dict) else {}
            models.append(ExportModel(api=native, base_url=direct_base, secret_env=env, via_serve=False,
                                      headers=headers, secret=credentials.api_key if include_secrets else None,
                                      **common))
            continue
        api = native if tool_apis is None or native in through else (through[0] if through else None)
        if api is None:
            continue  # the tool lists no API: export_models reports it as skipped
        models.append(ExportModel(
            api=api, base_url=serve_url if api == API_MESSAGES else f"{serve_url}/v1", secret_env=KEY_ENV,
            via_serve=True, secret=stable_key(store.home) if include_secrets else None,
            request_model=f"{route}/{model}", **common))
    options = ExportOptions(provider=provider, title=loaded.title, marker=marker, serve_url=serve_url,
                            serve_key_env=KEY_ENV, include_secrets=include_secrets,
                            account=None if is_default else account)
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
    account: str | None = None,
) -> ExportResult:
    """Write (or, with ``print_only``, only show) ``provider``'s models in ``exporter``'s format.

    See the module docstring for the steps. ``print_only`` writes nothing at all: not the
    tool's file, not a backup, not the record.
    """
    tool = load_exporter(exporter)
    serve_apis = tool.info.get("serve_apis")
    models, options = build_export_models(provider, home=home, via_serve=via_serve, serve_port=serve_port,
                                          include_secrets=include_secrets, tool_apis=tool.apis,
                                          serve_apis=serve_apis if isinstance(serve_apis, list) else None,
                                          account=account)
    usable = models
    result = ExportResult(provider=provider, exporter=tool.name, tool=tool.title, path=None,
                          account=options.account, via_serve=any(m.via_serve for m in usable))
    if not models:  # only a tool that lists no API at all
        result.skipped = [{"key": k, "model": k, "api": "", "reason": f"{tool.title} names no API it can call"}
                          for k in _stored_keys(provider, home, options.account)]
    result.models = [m.key for m in usable]
    entries = tool.call("render", models=usable, options=options) or {}
    target = _target(tool, output)
    if target is None and not print_only:
        raise OAuthHubError(f"{tool.title} has no standard configuration file: pass --output PATH "
                            "(or --print to see the entries).")
    old_text = _read_text(target) if target is not None else None
    document = tool.parse(old_text, target) if old_text is not None else None
    # Counted on a copy of its own: merge may change the document in place (which is
    # how a TOML file keeps its comments).
    before = _ours(tool, tool.parse(old_text, target) if old_text is not None else None, options.marker)
    new_document, conflicts = tool.call("merge", document=document, entries=entries, marker=options.marker)
    result.conflicts = list(conflicts)
    result.keys = [k for k in entries if k not in result.conflicts]
    result.removed_stale = len(before - set(result.keys))
    result.text = tool.dump(new_document)
    result.path = str(target) if target is not None else None
    result.instructions = list(tool.call("instructions", required=False, models=usable, options=options,
                                         path=result.path) or [])
    if not tool.keeps_comments and old_text and any(line.lstrip().startswith("#") for line in old_text.splitlines()):
        result.notes.append(f"Comments in the {tool.format.upper()} file are not kept when it is rewritten; "
                            "the backup has them.")
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
    _record(Store(home), provider, tool.name, target, result.keys, options.marker, options.account,
            secrets=options.include_secrets, backup=result.backup)
    return result


def _stored_keys(provider: str, home: str | Path | None, account: str | None = None) -> list[str]:
    from ..store import record_name

    store = Store(home)
    data = read_json(store.models_path(record_name(provider, account or store.default_account(provider))))
    return [str(k) for k in data] if isinstance(data, dict) else []


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
        _, removed = tool.call("remove", document=document, keys=None, marker=marker)
    except OAuthHubError:
        return set()
    return set(removed or ())
