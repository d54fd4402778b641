"""The record of what ``export`` wrote (``exports.json`` in the home), and its removal at logout.

Each row names the account it was exported for: ``"account": null`` (or no key, as an
older oauth-hub wrote it) for the provider's *default* account, whose entries keep the
provider's own names and reach whichever account is the default; an account name for
another account's entries (``chatgpt-work-…``). ``logout --account NAME`` removes the
rows of NAME, and those of the default when NAME was the default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import CorruptFileError, OAuthHubError
from ..store import Store, read_json, write_json
from .formats import _read_text, backup_file, write_file
from .loading import load_exporter

RECORD_FILE = "exports.json"



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


def _record(store: Store, provider: str, exporter: str, path: Path, keys: list[str], marker: str,
            account: str | None = None, *, secrets: bool = True, backup: str | None = None) -> None:
    """Remember which entries of ``provider`` (its ``account``; ``None``: the default) are in ``path``.

    The file is forgotten when none are. ``secrets``: the entries hold a secret in clear
    (``--include-secrets``). A ``backup`` made of a file whose entries of ours held one is
    remembered too (``secret_backups``), so that logout can take those entries out of it
    as well.
    """
    from ..credentials import utc_now_iso

    rows = _records(store)
    same = (provider, account, exporter, str(path))
    previous = next((r for r in rows
                     if (r.get("provider"), r.get("account"), r.get("exporter"), r.get("path")) == same), None)
    rows = [r for r in rows if r is not previous]
    secret_backups = [str(b) for b in (previous or {}).get("secret_backups") or []]
    if backup is not None and previous is not None and previous.get("secrets", True):
        secret_backups.append(str(backup))
    if keys or secret_backups:
        rows.append({"provider": provider, "account": account, "exporter": exporter, "path": str(path),
                     "keys": list(keys), "marker": marker, "exported_at": utc_now_iso(),
                     "secrets": bool(secrets) and bool(keys), "secret_backups": secret_backups})
    _save_records(store, rows)


def exported(provider: str | None = None, *, home: str | Path | None = None) -> list[dict[str, Any]]:
    """What ``export`` wrote and has not removed yet (all providers, or one)."""
    return [r for r in _records(Store(home)) if provider is None or r.get("provider") == provider]


def remove_exports(provider: str, *, home: str | Path | None = None, account: str | None = None,
                   default: bool = True) -> dict[str, Any]:
    """Remove from each tool's file exactly the entries ``export`` recorded for ``provider``.

    ``account``: only the rows of that account, plus the default account's rows when
    ``default`` (the account was the default). Without ``account``: every row of the provider.

    Called by ``logout``. Entries are removed only while they still carry our marker;
    each changed file is backed up first, unless our entries in it held a secret in
    clear (``--include-secrets``; also when an older record does not say): logout leaves
    no copy of a secret behind, so such a backup is not kept, and the backups ``export``
    made of the file while it held one are scrubbed of our entries too. A file that
    cannot be read or parsed is left alone and its record kept (a note says so), so a
    later logout can try again.
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
        mine = row.get("provider") == provider and (
            account is None or row.get("account") == account or (default and row.get("account") is None))
        if not mine:
            kept.append(row)
            continue
        path = Path(str(row.get("path")))
        try:
            tool = load_exporter(str(row.get("exporter")))
            marker = str(row.get("marker") or "")
            for copy in row.get("secret_backups") or []:
                if _scrub(tool, Path(str(copy)), None, marker):
                    report["notes"].append(f"Took the {tool.title} entries holding a secret out of the backup {copy}.")
            text = _read_text(path)
            if text is None:
                continue  # the file is gone, and our entries with it
            document = tool.parse(text, path)
            if document is None:
                continue
            new_document, removed = tool.call("remove", document=document, keys=list(row.get("keys") or []),
                                              marker=marker)
            if removed:
                secret = row.get("secrets", True) is not False
                backup = None if secret else backup_file(path)
                write_file(path, tool.dump(new_document))
                report["removed"].append({"exporter": tool.name, "path": str(path), "keys": list(removed),
                                          "backup": str(backup) if backup else None})
                if secret:
                    report["notes"].append(f"No backup of {path} was kept: the entries removed from it held a secret.")
        except OAuthHubError as exc:
            report["notes"].append(f"Could not remove the {row.get('exporter')} entries from {path}: {exc}")
            kept.append(row)
        except OSError as exc:
            report["notes"].append(f"Could not rewrite {path} ({exc.strerror or exc}); its entries are still there.")
            kept.append(row)
    if len(kept) != len(rows):
        _save_records(store, kept)
    return report


def _scrub(tool: Any, path: Path, keys: list[str] | None, marker: str) -> bool:
    """Take our entries (``keys``; ``None``: all of ours) out of a file in place; whether any were there."""
    text = _read_text(path)
    document = tool.parse(text, path) if text is not None else None
    if document is None:
        return False
    new_document, removed = tool.call("remove", document=document, keys=keys, marker=marker)
    if removed:
        write_file(path, tool.dump(new_document))
    return bool(removed)
