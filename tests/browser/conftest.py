"""Fixtures for the tests that drive a real headless Chromium (marker ``browser``).

- ``chromium_browser_env``: the environment overrides that make ``$BROWSER`` the
  Playwright-driven Chromium of :mod:`oauth_core.testing.chromium`, with its
  screenshots, ``result.json`` and NetLog in a temporary directory.
- ``oidc_provider``: panva's ``oidc-provider`` (npm, v9) on a free loopback port, one
  native public client (PKCE required, refresh rotation, revocation, dev login pages).
  ``oidc_provider_factory`` starts more, or with other settings.
- ``strict_oidc_provider``: the same server left at oidc-provider's defaults where a
  deployment would be (EdDSA ID tokens, claims at userinfo only, refresh tokens only
  for offline_access with consent), device flow on, 30-second access tokens, and a clock
  the test can move ahead. One per module.
- ``dot_server``: django-oauth-toolkit in a minimal Django site (tests/dot_server), with
  a user, Django's login form and DOT's consent page. One per module (migrating its
  database takes a while).

Set up a machine with ``scripts/install-test-deps.sh`` (Debian's chromium, the npm
packages) and ``pip install -e '.[test]'`` (Playwright's Python package). When any of
these is missing the tests fail with the fix, rather than skip: CI runs them.
Every test in this directory is marked ``browser``; deselect them with ``-m "not browser"``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from oauth_core.testing import chromium

from .dot_process import DotServer, DotServerUnavailable, start_dot_server
from .dot_process import check_installed as check_dot_installed
from .oidc_process import OidcServer, OidcServerUnavailable, check_installed, start_oidc_server

HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    # Also declared in pyproject.toml; repeated so this directory stands on its own.
    config.addinivalue_line("markers", "browser: drives a real headless Chromium (CI runs these too)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test here drives Chromium, whether or not its module says so."""
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """Debian's Chromium, checked once, with Playwright's Python package beside it."""
    try:
        executable = chromium.check_available()
    except chromium.ChromiumUnavailable as exc:
        pytest.fail(f"{exc} (Or deselect these tests with -m 'not browser'.)", pytrace=False)
    return executable


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    path = tmp_path / "screenshots"
    path.mkdir()
    return path


@pytest.fixture
def chromium_browser_env(chromium_executable: str, screenshot_dir: Path, tmp_path: Path) -> dict[str, str]:
    """Environment overrides: ``$BROWSER`` is headless Chromium; its artifacts go to tmp.

    Merge it over the environment of the command under test (``cli(..., env=...)``
    does that). The navigation log is ``tmp_path/browser.log``, the file the ``cli``
    fixture's ``visited()`` reads. After the command, :func:`chromium.read_result`
    on ``env["OAUTH_HUB_TEST_SCREENSHOT_DIR"]`` gives the outcome, and
    ``netlog.json`` there every request Chromium made.
    """
    return {
        "BROWSER": chromium.browser_command(),
        chromium.ENV_EXECUTABLE: chromium_executable,
        chromium.ENV_SCREENSHOT_DIR: str(screenshot_dir),
        chromium.ENV_LOG: str(tmp_path / "browser.log"),
        chromium.ENV_TIMEOUT: "45",
    }


@pytest.fixture(scope="session")
def oidc_server_installed() -> None:
    try:
        check_installed()
    except OidcServerUnavailable as exc:
        pytest.fail(f"{exc} (Or deselect these tests with -m 'not browser'.)", pytrace=False)


@pytest.fixture
def oidc_provider_factory(oidc_server_installed: None, tmp_path: Path) -> Iterator[Callable[..., OidcServer]]:
    """Start oidc-provider servers (keyword arguments as :func:`start_oidc_server`)."""
    started: list[OidcServer] = []

    def start(**options: object) -> OidcServer:
        log = tmp_path / f"oidc-provider-{len(started) + 1}.log"
        server = start_oidc_server(log, **options)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def oidc_provider(oidc_provider_factory: Callable[..., OidcServer]) -> OidcServer:
    """oidc-provider on a free port: ``.issuer``, ``.client_id``, ``.redirect_uris``, ``.log()``."""
    return oidc_provider_factory()


@pytest.fixture(scope="module")
def strict_oidc_provider(oidc_server_installed: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcServer]:
    log = tmp_path_factory.mktemp("strict-oidc-provider") / "oidc-provider.log"
    server = start_oidc_server(log, strict=True, test_clock=True, access_token_ttl=30)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def dot_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DotServer]:
    try:
        check_dot_installed()
    except DotServerUnavailable as exc:
        pytest.fail(f"{exc} (Or deselect these tests with -m 'not browser'.)", pytrace=False)
    server = start_dot_server(tmp_path_factory.mktemp("dot-server"), access_token_ttl=300)
    yield server
    server.stop()
