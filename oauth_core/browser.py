"""Opening the sign-in URL in a browser.

Python's :mod:`webbrowser` honours ``$BROWSER``. Some browser commands run until the
browser closes (a text browser in the same terminal, or a script), so the call runs in
a daemon thread: if it has not returned after a few seconds the browser is taken to be
open, and the login's countdown is not held up.
"""

from __future__ import annotations

import threading

LAUNCH_GRACE = 3.0  # seconds to wait for the browser command to report success


def open_in_browser(url: str) -> bool:
    """Try to open ``url``; ``False`` when no browser could be started."""
    result: list[bool] = []

    def launch() -> None:
        import webbrowser

        try:
            result.append(bool(webbrowser.open(url)))
        except Exception:  # webbrowser raises webbrowser.Error and OSError variants
            result.append(False)

    thread = threading.Thread(target=launch, name="oauth-hub-browser", daemon=True)
    thread.start()
    thread.join(LAUNCH_GRACE)
    return result[0] if result else True
