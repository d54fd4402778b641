"""Opening the sign-in URL in a browser, where there is one.

- ``$BROWSER`` always wins (Python's :mod:`webbrowser` honours it).
- On WSL the Windows browser is used: ``wslview`` (wslu) if present, else
  ``powershell.exe Start-Process``.
- Over SSH, or on a Linux machine without a display, no browser is tried: Python would
  otherwise start a text browser (lynx, w3m) inside the very terminal that shows the URL.
  The caller prints the URL and accepts a pasted redirect instead.

Some browser commands run until the browser closes (a script, a text browser), so the
launch runs in a daemon thread: if it has not returned after a few seconds the browser
is taken to be open, and the login's countdown is not held up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable

LAUNCH_GRACE = 3.0  # seconds to wait for the browser command to report success


def is_wsl() -> bool:
    """Running under Windows Subsystem for Linux."""
    if os.environ.get("WSL_DISTRO_NAME"):
        return True
    try:
        with open("/proc/sys/kernel/osrelease", encoding="ascii", errors="replace") as handle:
            return "microsoft" in handle.read().lower()
    except OSError:
        return False


def has_display() -> bool:
    """Whether a graphical browser could appear (always assumed on macOS and Windows)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def is_ssh() -> bool:
    """A remote shell without a forwarded display."""
    return bool(os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_TTY")) and not has_display()


def why_no_browser() -> str | None:
    """Why no browser will be tried here, or ``None`` when one will."""
    if os.environ.get("BROWSER"):
        return None
    if is_wsl():
        return None if (shutil.which("wslview") or shutil.which("powershell.exe")) else "WSL without wslview"
    if is_ssh():
        return "this is an SSH session"
    if not has_display():
        return "there is no display"
    return None


def _wsl_launcher(url: str) -> Callable[[], bool]:
    def launch() -> bool:
        wslview = shutil.which("wslview")
        # The URL reaches PowerShell through the environment, never inside the command
        # text: it may hold characters (from a discovery document) that PowerShell parses.
        command = [wslview, url] if wslview else [
            "powershell.exe", "-NoProfile", "-NonInteractive", "-Command", "Start-Process $env:OAUTH_HUB_OPEN_URL",
        ]
        return subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=30,
                              env=dict(os.environ, OAUTH_HUB_OPEN_URL=url)).returncode == 0

    return launch


def _webbrowser_launcher(url: str) -> Callable[[], bool]:
    def launch() -> bool:
        import webbrowser

        return bool(webbrowser.open(url))

    return launch


def open_in_browser(url: str) -> bool:
    """Try to open ``url``; ``False`` when no browser could (or should) be started."""
    if why_no_browser() is not None or not url.lower().startswith(("https://", "http://")):
        return False
    launch = _wsl_launcher(url) if is_wsl() and not os.environ.get("BROWSER") else _webbrowser_launcher(url)
    result: list[bool] = []

    def run() -> None:
        try:
            result.append(launch())
        except Exception:  # webbrowser.Error, OSError, TimeoutExpired: all mean "not opened"
            result.append(False)

    thread = threading.Thread(target=run, name="oauth-hub-browser", daemon=True)
    thread.start()
    thread.join(LAUNCH_GRACE)
    return result[0] if result else True
