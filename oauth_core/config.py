"""``config.toml``: per-provider overrides of the provider's defaults.

One table per provider, ``[providers.NAME]``. The provider's own defaults (from its
``provider_defaults`` hook) say which keys exist and what type each has, so
``config set chatgpt.port 1457`` stores an integer and ``config set chatgpt.port abc``
is refused before anything is written. Read with :mod:`tomllib`, written with
``tomli_w`` through the same atomic writer as the token files.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .store import read_private, write_private


def load(path: Path) -> dict[str, Any]:
    """The whole config file as a dict; empty when the file does not exist."""
    import tomllib  # imported here: most commands never have a config file to parse

    raw = read_private(path)  # like every file of the home: never through a symbolic link
    if raw is None:
        return {}
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}). Fix it or remove it.") from None
    except RecursionError:  # "a = [[[[…": tomllib recurses per level (tests/test_properties.py)
        raise ConfigError(f"{path} nests arrays or tables too deeply to be a config file. Fix it or remove it.") \
            from None
    providers = data.get("providers", {})
    if not isinstance(providers, dict) or any(not isinstance(v, dict) for v in providers.values()):
        raise ConfigError(f"{path}: 'providers' must hold one [providers.NAME] table per provider.")
    return data


def provider_table(data: Mapping[str, Any], provider: str) -> dict[str, Any]:
    """The ``[providers.NAME]`` table (empty if absent)."""
    return dict(data.get("providers", {}).get(provider, {}))


def merge(defaults: Mapping[str, Any], overrides: Mapping[str, Any], *, path: Path, provider: str) -> dict[str, Any]:
    """Defaults with overrides applied, each override checked against the default's type."""
    merged = dict(defaults)
    for key, value in overrides.items():
        if key in defaults and defaults[key] is not None:
            merged[key] = _check_type(defaults[key], value, f"{path} [providers.{provider}] {key}")
        else:
            merged[key] = value
    return merged


def _check_type(default: Any, value: Any, where: str) -> Any:
    expected = type(default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
        if expected is list and default:
            # The items too: `fallback_ports = ["x"]` passed as a list and crashed the login
            # turning it into a port (tests/test_properties.py).
            item = type(default[0])
            if any(not isinstance(v, item) or (item is int and isinstance(v, bool)) for v in value):
                raise ConfigError(f"{where} must be a list of {_PLURAL.get(item, item.__name__)}.")
        return value
    raise ConfigError(f"{where} must be {_type_name(expected)}, not {_type_name(type(value))}.")


_PLURAL = {int: "integers", float: "numbers", bool: "true/false values", str: "strings"}


def _type_name(kind: type) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string", list: "a list"}.get(
        kind, kind.__name__
    )


def parse_value(text: str, default: Any, key: str = "the value") -> Any:
    """Turn the text of ``config set`` into the type the default has; ``key`` names it in errors."""
    if isinstance(default, bool):
        lowered = text.strip().lower()
        if lowered in ("true", "yes", "1", "on"):
            return True
        if lowered in ("false", "no", "0", "off"):
            return False
        raise ConfigError(f"{key} must be true or false, not {text!r}.")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{key} must be an integer, not {text!r}.") from None
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{key} must be a number, not {text!r}.") from None
    if isinstance(default, list):
        items = [item.strip() for item in text.split(",") if item.strip()]
        if default and not isinstance(default[0], str):  # e.g. fallback_ports: a list of integers
            return [parse_value(item, default[0], f"each item of {key}") for item in items]
        return items
    return text


def save(path: Path, data: Mapping[str, Any]) -> None:
    """Write the config atomically (mode 0600, like every file in the home)."""
    import tomli_w

    write_private(path, tomli_w.dumps(dict(data)).encode("utf-8"))


def set_value(path: Path, provider: str, key: str, value: Any) -> None:
    """Set ``[providers.provider] key = value``, keeping everything else in the file."""
    data = load(path)
    providers = data.setdefault("providers", {})
    providers.setdefault(provider, {})[key] = value
    save(path, data)


HUB_SETTINGS = {"storage": "file"}  # settings of the hub itself (top-level keys), with their defaults


def set_hub_value(path: Path, key: str, value: Any) -> None:
    """Set a top-level setting (``storage = "keyring"``), keeping everything else in the file."""
    data = load(path)
    data[key] = value
    save(path, data)


def unset_hub_value(path: Path, key: str) -> bool:
    data = load(path)
    if key not in data:
        return False
    del data[key]
    save(path, data)
    return True


def unset_value(path: Path, provider: str, key: str) -> bool:
    """Remove an override; returns whether there was one."""
    data = load(path)
    table = data.get("providers", {}).get(provider, {})
    if key not in table:
        return False
    del table[key]
    if not table:
        del data["providers"][provider]
    save(path, data)
    return True
