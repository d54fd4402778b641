"""Tools' files: parsing and writing each document format, backups and atomic writes."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

from ..errors import CorruptFileError, OAuthHubError
from ..store import write_private

BUILT_IN_FORMATS = ("json", "yaml", "toml")
KEEPS_COMMENTS = {"json": True, "yaml": False, "toml": True}  # JSON has none to lose


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise OAuthHubError(f"Cannot read {path}: {getattr(exc, 'strerror', None) or exc}.") from None


def not_valid(where: str, fmt: str, line: int | None = None) -> CorruptFileError:
    """The error for a tool's file that does not parse: named, left alone, and what to do."""
    at = f" (line {line})" if line else ""
    return CorruptFileError(f"{where} is not valid {fmt.upper() if len(fmt) <= 4 else fmt}{at}; it was left "
                            "untouched. Fix it, or use --print and copy the entries in by hand.")


def parse_document(text: str, fmt: str, path: Path | None = None) -> Any:
    """Parse a tool's file with a built-in format's own parser; empty means no document yet.

    A file that does not parse is reported by name and left exactly as it is. TOML is
    parsed with ``tomlkit``, whose document keeps the file's comments and layout through
    an in-place merge (see :mod:`.merge`).
    """
    if not text.strip():
        return None
    where = str(path) if path is not None else "the file"
    nested = CorruptFileError(f"{where} nests its entries too deeply to be a {fmt.upper()} config file; it was "
                              "left untouched. Fix it, or use --print and copy the entries in by hand.")
    if fmt == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise not_valid(where, fmt, exc.lineno) from None
        except RecursionError:
            raise nested from None
    if fmt == "toml":
        import tomlkit
        from tomlkit.exceptions import ParseError

        try:
            return tomlkit.parse(text)
        except ParseError as exc:
            raise not_valid(where, fmt, exc.line) from None
        except RecursionError:
            raise not_valid(where, fmt) from None
    if fmt == "yaml":
        import yaml

        try:
            return yaml.safe_load(text)
        except RecursionError:
            raise nested from None
        except yaml.YAMLError as exc:
            line = getattr(getattr(exc, "problem_mark", None), "line", None)
            raise not_valid(where, fmt, line + 1 if line is not None else None) from None
    raise OAuthHubError(f"{fmt!r} is not a built-in document format ({', '.join(BUILT_IN_FORMATS)}).")


def dump_document(document: Any, fmt: str) -> str:
    """Serialise a tool's file in a built-in format, in the order given.

    JSON with two-space indent; block-style YAML; TOML through ``tomlkit`` (a parsed
    document comes back with its comments, a new one is laid out as tables).
    """
    if document is None:
        return ""
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if fmt == "toml":
        import tomlkit
        from tomlkit.exceptions import ConvertError

        try:
            return tomlkit.dumps(document)
        except ConvertError as exc:  # TOML has no null, and no mixed-type arrays in old readers
            raise OAuthHubError(f"The entries cannot be written as TOML ({exc}); TOML has no null value.") from None
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000)
    raise OAuthHubError(f"{fmt!r} is not a built-in document format ({', '.join(BUILT_IN_FORMATS)}).")


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

