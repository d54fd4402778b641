"""The record of what ``export`` wrote (``exports.json`` in the home), and its removal at logout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import CorruptFileError, OAuthHubError
from ..store import Store, read_json, write_json
from .formats import _read_text, backup_file, dump_document, parse_document, write_file
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

