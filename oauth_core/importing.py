"""``oauth-hub import SOURCE``: take over a sign-in another program (a vendor's own CLI) made.

Which programs can be imported from, where their sign-in is and how it is read are the
providers' business (the ``import_sources``, ``read_import`` and ``release_import``
hooks); the engine finds the provider that offers the source, stores the sign-in as an
account like a login would (labelled, its profile, API key and model entries, a sign-in
it replaces revoked), and then lets the provider remove the other program's copy.

Why take it over rather than share it: refresh tokens rotate, and the identity
providers end a sign-in whose spent refresh token is used again. Two programs that
both refresh one sign-in (each from its own copy) therefore end it for both, sooner or
later. Reading through the other program's file without ever refreshing would avoid
that, but then a token is only as fresh as that program keeps it (some last eight
hours): not a sign-in oauth-hub's tools could rely on. So the other program's copy is
removed (nothing is revoked), and the message says to sign that program in again; its
new sign-in is independent of oauth-hub's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .credentials import Credentials
from .errors import OAuthHubError
from .provider import Provider
from .store import Store, record_name


class ImportFailed(OAuthHubError):
    """Nothing to import from the named source."""


def import_sources(*, home: str | Path | None = None, environ: dict[str, str] | None = None
                   ) -> list[dict[str, str]]:
    """Every source some installed provider can import from: ``name``, ``title``, ``path``, ``provider``."""
    from . import plugins

    store = Store(home)
    environ = dict(os.environ if environ is None else environ)
    found = []
    for name in plugins.provider_names(store.home):
        try:
            provider = Provider.load(name, store)
        except OAuthHubError:
            continue
        if not provider.has("import_sources"):
            continue
        for source in provider.call("import_sources", required=False, environ=environ) or []:
            if isinstance(source, dict) and isinstance(source.get("name"), str) and isinstance(source.get("path"), str):
                found.append({"name": source["name"], "title": str(source.get("title") or source["name"]),
                              "path": source["path"], "provider": name})
    return found


def import_sign_in(
    source: str, *, account: str | None = None, home: str | Path | None = None,
    environ: dict[str, str] | None = None, http: Any = None, path: str | Path | None = None,
) -> dict[str, Any]:
    """Store the sign-in of program ``source`` as ``account`` of its provider, then remove the program's copy.

    ``path`` overrides where the source keeps it. Returns a summary: ``provider``,
    ``account``, ``email``, ``plan``, ``models``, ``source_path``, ``released`` (what was
    done to the other program's copy) and ``warnings``.
    """
    from .http import HttpClient
    from .login import LoginUI, _complete
    from .tokens import command_target

    store = Store(home)
    sources = import_sources(home=store.home, environ=environ)
    match = next((s for s in sources if s["name"] == source), None)
    if match is None:
        known = ", ".join(sorted(s["name"] for s in sources)) or "none"
        raise ImportFailed(f"Nothing imports from {source!r}; the sources are: {known}.")
    provider = Provider.load(match["provider"], store)
    where = str(path) if path is not None else match["path"]
    found = provider.call("read_import", source=source, path=where)
    answer = found.get("answer") if isinstance(found, dict) else None
    if not isinstance(answer, dict) or not answer.get("access_token"):
        raise ImportFailed(f"{provider.title} read no sign-in from {where}.")
    account = store.resolve_account(provider.name, account)
    http = http or HttpClient()
    provider.resolve(http)

    from .login import someone_else
    from .tokens import load_credentials

    try:
        held = load_credentials(provider.name, store, account)
    except OAuthHubError:
        held = None  # unreadable: the import sets it aside like a login would

    def keep_what_the_program_knew(credentials: Credentials) -> None:
        if isinstance(found.get("expires_at"), (int, float)):
            credentials.expires_at = float(found["expires_at"])
        if isinstance(found.get("last_refresh"), str):
            credentials.last_refresh = found["last_refresh"]
        if isinstance(found.get("api_key"), str):
            from .credentials import utc_now_iso

            credentials.api_key = found["api_key"]
            credentials.api_key_obtained_at = utc_now_iso()
        if isinstance(found.get("account"), dict):
            credentials.account = {**found["account"], **credentials.account}
        # Called before anything is saved: an import never silently replaces (and
        # revokes) another person's sign-in held under the same account name.
        other = someone_else(held, credentials)
        if other is not None:
            incoming = credentials.account.get("email") or credentials.account.get("account_id") or "another account"
            target = command_target(provider.name, account)
            raise ImportFailed(
                f"{target} is signed in as {other}, and {match['title']}'s sign-in is {incoming}: nothing was "
                f"changed. Import it as another account: `oauth-hub import {source} --account NAME`, or run "
                f"`oauth-hub logout {target}` first to replace it."
            )

    hint = f"oauth-hub import {source}" + (f" --account {account}" if account != "main" else "")
    from .tokens import record_lock

    store.ensure()
    with record_lock(store, record_name(provider.name, account)):
        result = _complete(provider, store, http, answer, LoginUI(), hint, account=account,
                           adjust=keep_what_the_program_knew)
    released = provider.call("release_import", required=False, source=source, path=where,
                             credentials=result.credentials)
    summary = result.summary()
    summary.update(source=source, source_path=where, released=released,
                   target=command_target(provider.name, account))
    return summary


def vendor_file(environ: dict[str, str], override: str, directory: str, name: str) -> Path:
    """Where a vendor's CLI keeps its sign-in: ``$<override>/<name>``, else ``~/<directory>/<name>``.

    ``environ`` is the environment the hook was given, not ``os.environ``, so tests
    and embedders can point it anywhere.
    """
    base = environ.get(override)
    if base:
        return Path(base) / name
    home = environ.get("HOME") or os.path.expanduser("~")
    return Path(home) / directory / name


def read_vendor_json(path: Path, *, missing: str, not_ours: str) -> dict[str, Any]:
    """A vendor's sign-in file as a JSON object; ``missing``/``not_ours`` say what to do instead.

    The file is only read: whatever is wrong with it, it is left as it was, and no
    message quotes its content (it holds tokens).
    """
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ImportFailed(missing) from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ImportFailed(f"Cannot read {path} ({type(exc).__name__}); it was left untouched.") from None
    if not isinstance(data, dict):
        raise ImportFailed(f"{path} is not {not_ours}; it was left untouched.")
    return data
