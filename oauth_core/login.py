"""The login flow: authorization code + PKCE through a loopback callback.

The steps, each a hook call into the provider:

0. ``sign_in_variants``: when the provider signs different kinds of account in
   differently (a subscription, an API console), the kind is chosen first (asked
   through the UI, or the default) and passed to every hook as ``settings["variant"]``.
1. ``build_auth_url`` with a fresh PKCE pair and ``state``; the callback server is
   already listening, so a fast browser cannot beat it.
2. The URL is always shown (via :class:`LoginUI`) and opened in a browser unless told
   not to; the wait counts down.
3. ``exchange_code`` → tokens; ``describe_account`` labels them; they are saved at once,
   before anything optional can fail.
4. ``account_profile`` (identity that takes a request), ``obtain_api_key`` (best
   effort: a refusal is a warning), then ``list_models`` and ``model_entry`` →
   ``<provider>_models.json`` (also best effort).
5. The sign-in this one replaced is revoked (``revoke_tokens``, best effort), as the
   vendors' own CLIs do: its refresh token must not stay valid on its own.

Nothing here prints: a UI object receives the events, so the CLI and an embedding tool
can present them as they like.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .credentials import Credentials, token_answer_problem
from .errors import CorruptFileError, IdPError, LoginCancelled, LoginError, LoginTimeout, OAuthHubError
from .http import MAX_ANSWER, HttpClient
from .loopback import CallbackServer
from .pkce import PkcePair, new_state
from .provider import Provider
from .store import Reservation, Store, check_file_slot, read_json, record_name, set_aside, write_json
from .tokens import RESERVE_SLACK, command_target, discard_pending, load_credentials, save_credentials


class LoginUI:
    """Receives login events. The default ignores them; the CLI prints them."""

    def notice(self, message: str) -> None:
        """Something worth knowing that is not a problem."""

    def warning(self, message: str) -> None:
        """Something went wrong or is about to, but the login goes on."""

    def begin(self, title: str) -> None:
        """A sign-in to the provider called ``title`` (e.g. "ChatGPT") is starting."""

    def choose_variant(self, title: str, variants: list[dict[str, str]]) -> str | None:
        """Which kind of sign-in to use (``variants`` from ``sign_in_variants``).

        Return a variant's ``name``, or ``None`` for the default (the first). The
        default UI cannot ask anybody, so it takes the default.
        """
        return None

    def auth_url(self, url: str) -> None:
        """The URL to open; show it always (a remote shell has no browser)."""

    def redirect_uri(self, uri: str) -> None:
        """Where the browser will come back to (host as the provider expects it: ``localhost`` or ``127.0.0.1``).

        Called before :meth:`waiting`, in a loopback sign-in only.
        """

    def browser_opened(self, opened: bool) -> None:
        """Whether a browser could be started."""

    def waiting(self, port: int | None, timeout: float, paste: bool) -> None:
        """The callback server listens on ``port`` for at most ``timeout`` seconds.

        ``port`` is ``None`` in a manual sign-in (no server: the code must be pasted).
        ``paste``: the redirect URL or code may be pasted (say so).
        """

    def pasted(self, accepted: bool, message: str) -> None:
        """How a pasted redirect URL was judged."""

    def device_code(self, verification_uri: str, user_code: str, expires_in: float) -> None:
        """Device login: the person opens ``verification_uri`` anywhere and enters ``user_code``."""

    def tick(self, seconds_left: float) -> None:
        """About once a second while waiting."""

    def step(self, message: str) -> None:
        """A step after the callback ("Exchanging the code…")."""


@dataclass
class LoginResult:
    """What a successful login produced."""

    credentials: Credentials
    models: dict[str, dict[str, Any]]
    tokens_path: Path
    models_path: Path
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        account = self.credentials.account
        return {
            "provider": self.credentials.provider,
            "account": self.credentials.account_name,
            "email": account.get("email"),
            "account_id": account.get("account_id"),
            "plan": account.get("plan"),
            "has_api_key": bool(self.credentials.api_key),
            "models": sorted(self.models),
            "tokens_path": str(self.tokens_path),
            "models_path": str(self.models_path),
            "warnings": list(self.warnings),
        }


LAST_MINUTE = 60.0  # warn when this many seconds are left


def _ticker(ui: LoginUI, hint: str, total: float) -> Callable[[float], None]:
    """``ui.tick`` plus one warning when the last minute starts.

    A wait of ``total`` seconds that is a minute or shorter from the start gets no such
    warning: the person chose it (``--timeout 30``), and being told at once that less
    than a minute is left is noise.
    """
    warned = total <= LAST_MINUTE

    def tick(left: float) -> None:
        nonlocal warned
        if left <= LAST_MINUTE and not warned:
            warned = True
            ui.warning(f"Less than a minute left: finish signing in now, or run `{hint}` again afterwards.")
        ui.tick(left)

    return tick


def login(
    name: str,
    *,
    home: str | Path | None = None,
    open_browser: bool = True,
    timeout: float | None = None,
    ui: LoginUI | None = None,
    http: HttpClient | None = None,
    paste: Iterable[str] | None = None,
    manual: bool = False,
    variant: str | None = None,
    account: str | None = None,
) -> LoginResult:
    """Sign in to provider ``name`` through the browser and store tokens and model entries.

    ``account``: which of the provider's accounts the sign-in is stored as (a new name
    adds an account; an existing one is replaced, as a second login always replaced the
    first). Default: ``$OAUTH_HUB_ACCOUNT``, else the provider's default account (``main``
    for the first).

    ``paste``: lines of text (e.g. ``sys.stdin``) where the person may paste the
    redirect URL instead of the browser reaching the loopback server (SSH, containers).
    ``manual``: no loopback server at all; the provider's ``manual_redirect_uri`` page
    shows a code (``code#state``) that must be pasted. ``variant``: which kind of
    sign-in, for a provider that offers several (``sign_in_variants``); ``None`` asks
    ``ui.choose_variant``. Ctrl+C (``KeyboardInterrupt``) ends the login with
    :class:`LoginCancelled`; nothing is written before the code exchange succeeds.
    """
    from .browser import open_in_browser
    from .paste import read_pastes

    ui = ui or LoginUI()
    store = Store(home)
    provider = Provider.load(name, store)
    account = store.resolve_account(name, account)
    http = http or HttpClient()
    if not provider.has("build_auth_url") and provider.has("start_device_login"):
        # A provider that signs in with a device code only (no authorization-code flow at
        # all): a plain login is its device login, with the page opened as asked.
        if manual:
            raise LoginError(f"{provider.title} signs in with a device code only; leave out --manual.")
        return device_login(name, home=home, open_browser=open_browser, timeout=timeout, ui=ui, http=http,
                            variant=variant, account=account)
    hint = f"oauth-hub login {command_target(name, account)}"
    manual_uri = provider.settings.get("manual_redirect_uri") or ""
    if manual and not manual_uri:
        raise LoginError(
            f"{provider.title} has no copy-the-code sign-in. Use `{hint} --no-browser` and paste the redirect URL"
            + (f", or `{hint} --device`." if provider.has("start_device_login") else ".")
        )
    if manual and paste is None:
        raise LoginError("A manual sign-in needs the code pasted on standard input.")
    _prepare_home(store, record_name(name, account))

    provider.resolve(http)
    choose_variant(provider, variant, ui)
    pkce = PkcePair.generate()
    state = new_state()
    nonce = new_state()
    wait_for = float(timeout if timeout is not None else provider.settings["callback_timeout"])
    advice = _no_port_advice(provider, hint)
    server = CallbackServer(
        path=provider.settings["callback_path"], state=state, ports=[] if manual else provider.ports,
        provider=provider.title, login_hint=hint, busy_advice=advice,
        cancel_stale=bool(provider.settings["cancel_busy_port"]),
        validate=lambda params: _judge_callback(provider, params, hint),
        success_url=str(provider.settings.get("success_url") or ""),
    )
    with contextlib.ExitStack() as stack:
        if not manual:
            stack.enter_context(server)
            for notice in server.notices:
                ui.notice(notice)
        redirect_uri = manual_uri if manual else provider.redirect_uri(server.port)
        url = provider.call("build_auth_url", redirect_uri=redirect_uri, state=state, code_challenge=pkce.challenge,
                            nonce=nonce)
        ui.begin(provider.title)
        ui.auth_url(url)
        if open_browser:
            ui.browser_opened(open_in_browser(url))
        if not manual:
            ui.redirect_uri(redirect_uri)
        try:  # Ctrl+C from the moment the wait is announced ends the login the same way
            ui.waiting(server.port, wait_for, paste is not None)
            if paste is not None:
                read_pastes(paste, server, ui.pasted)
            callback = server.wait(wait_for, tick=_ticker(ui, hint, wait_for))
        except KeyboardInterrupt:
            server.cancel("Login interrupted.")
            raise LoginCancelled(f"Login interrupted; nothing was saved. Run `{hint}` to start again.") from None

    with _record_space(store, record_name(name, account)) as space:  # a full disk is found out before the code is spent
        ui.step("Exchanging the authorization code for tokens…")
        try:
            answer = provider.call(
                "exchange_code", http=http, code=callback.code, redirect_uri=redirect_uri,
                code_verifier=pkce.verifier, state=state,
            )
        except IdPError as exc:
            advice = _advice(provider, exc.code)
            raise LoginError(f"{exc}{advice} Nothing was saved; run `{hint}` to try again.") from None
        return _complete(provider, store, http, answer, ui, hint, nonce=nonce, account=account, space=space)


def _prepare_home(store: Store, record: str) -> None:
    """The home exists and nothing is in the way of the files a login of ``record`` writes.

    Checked before the sign-in starts: once the authorization code is spent, a
    directory or a symbolic link at the token file's path would lose the sign-in. A
    read-only home or a full disk is found out here too (a trial reservation, released
    at once), so nobody signs in in the browser only to be told afterwards; the real
    reservation is made again just before the code exchange.
    """
    store.ensure()
    for path in (store.tokens_path(record), store.models_path(record), store.pending_path(record)):
        check_file_slot(path)
    _record_space(store, record).release()


def _no_port_advice(provider: Provider, hint: str) -> str:
    """", or …" naming the sign-ins that need no callback port, for when none can be had.

    Not ``--no-browser``: pasting the redirect URL still needs the callback server
    listening on one of the provider's ports, so it fails the same way.
    """
    advice = f", or use `{hint} --device`" if provider.has("start_device_login") else ""
    if provider.settings.get("manual_redirect_uri"):
        advice += f", or `{hint} --manual` and paste the code the provider's page shows"
    return advice


def _record_space(store: Store, record: str) -> Reservation:
    return Reservation(store.home, store.tokens_path(record).name, MAX_ANSWER + RESERVE_SLACK)


def _advice(provider: Provider, error: str | None) -> str:
    """" " + the provider's advice for the OAuth ``error`` code, or ""."""
    if not error:
        return ""
    advice = provider.call("refusal_advice", required=False, error=error)
    return f" {advice}" if advice else ""


def _judge_callback(provider: Provider, params: dict[str, str], hint: str) -> None:
    """Every check of a callback whose state matched, run before the browser gets its page.

    So the page says what the terminal will say: a refused ``iss``, or a refusal by the
    provider with its advice (an ``invalid_scope`` names the setting to change).
    """
    if "error" in params:
        advice = _advice(provider, params.get("error"))
        if advice:
            from .errors import scrub

            code = params.get("error") or "unknown_error"
            description = params.get("error_description", "")
            detail = scrub(f"{code}: {description}" if description else code, 200)
            raise LoginError(f"{provider.title} refused the sign-in ({detail}).{advice} Then run `{hint}` again.")
        return
    _check_issuer(provider, params, hint)


def choose_variant(provider: Provider, variant: str | None, ui: LoginUI) -> str | None:
    """Settle which kind of sign-in this is; put it in ``settings["variant"]``.

    A provider without variants takes none (naming one is an error, so a typo in
    ``--variant`` is not silently ignored); otherwise the named one, or the UI's
    choice, or the first.
    """
    offered = [v for v in provider.call("sign_in_variants", required=False) or [] if v.get("name")]
    names = [str(v["name"]) for v in offered]
    if not offered:
        if variant is not None:
            raise LoginError(f"{provider.title} has only one kind of sign-in; leave out --variant ({variant}).")
        return None
    if variant is None:
        variant = ui.choose_variant(provider.title, offered) or names[0]
    if variant not in names:
        raise LoginError(
            f"{provider.title} has no sign-in called {variant!r}; choose one of: {', '.join(names)} "
            f"(`oauth-hub login {provider.name} --variant NAME`)."
        )
    provider.settings["variant"] = variant
    return variant


def _check_issuer(provider: Provider, params: dict[str, str], hint: str) -> None:
    """RFC 9207: a callback's ``iss`` must be our provider's issuer (mix-up defence)."""
    expected = str(provider.settings.get("issuer") or "").rstrip("/")
    got = params.get("iss")
    if got is not None and expected and got.rstrip("/") != expected:
        raise LoginError(
            f"The sign-in came back from {got!r}, not from {expected!r}, so it was refused. Run `{hint}` again."
        )
    if got is None and provider.settings.get("require_iss"):
        raise LoginError(f"The sign-in came back without the issuer ({expected}) naming itself. Run `{hint}` again.")


def device_login(
    name: str,
    *,
    home: str | Path | None = None,
    open_browser: bool = False,
    timeout: float | None = None,
    ui: LoginUI | None = None,
    http: HttpClient | None = None,
    variant: str | None = None,
    account: str | None = None,
) -> LoginResult:
    """Sign in with a device code: no callback server, for machines without a browser.

    ``account`` as for :func:`login`.

    The person opens the provider's device page on any device and types the code shown;
    this process polls until they approve, the code expires, or ``timeout``.
    """
    ui = ui or LoginUI()
    store = Store(home)
    provider = Provider.load(name, store)
    account = store.resolve_account(name, account)
    http = http or HttpClient()
    hint = f"oauth-hub login {command_target(name, account)} --device"
    if not provider.has("start_device_login"):
        raise LoginError(
            f"{provider.title} does not offer device-code sign-in. Use `oauth-hub login {name} --no-browser`, "
            "open the URL on any machine and paste the address it ends on back here."
        )
    _prepare_home(store, record_name(name, account))
    provider.resolve(http)
    choose_variant(provider, variant, ui)
    device = provider.call("start_device_login", http=http)
    expires_in = float(device.get("expires_in") or 900)
    wait_for = min(float(timeout), expires_in) if timeout is not None else expires_in
    interval = _interval(device.get("interval"))
    if not device.get("verification_uri") or not device.get("user_code"):
        raise LoginError(f"{provider.title} started a device sign-in without a page or code to show. Try again later.")
    ui.device_code(device["verification_uri"], device["user_code"], wait_for)
    if open_browser:
        from .browser import open_in_browser

        ui.browser_opened(open_in_browser(device["verification_uri"]))
    deadline = time.monotonic() + wait_for
    tick = _ticker(ui, hint, wait_for)
    with _record_space(store, record_name(name, account)) as space:  # polling can end in a code exchange: space first
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LoginTimeout(
                        f"The device code was not approved within {int(wait_for)} seconds. Run `{hint}` again "
                        "and enter the new code right away."
                    )
                tick(left)
                time.sleep(min(interval, left))
                answer = provider.call("poll_device_login", required=False, http=http, device=device)
                if answer:
                    break
                interval = _interval(device.get("interval"))  # a slow_down answer may have raised it
        except KeyboardInterrupt:
            raise LoginCancelled(f"Login interrupted; nothing was saved. Run `{hint}` to start again.") from None
        ui.step("Approved. Fetching tokens…")
        return _complete(provider, store, http, answer, ui, hint, account=account, space=space)


def _interval(value: Any) -> float:
    """Polling interval in seconds; providers send it as a number or a string."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return 5.0
    return min(max(seconds, 0.2), 60.0)


def _complete(
    provider: Provider, store: Store, http: HttpClient, answer: dict[str, Any], ui: LoginUI, hint: str,
    nonce: str | None = None, account: str = "main", adjust: Callable[[Credentials], None] | None = None,
    space: Reservation | None = None,
) -> LoginResult:
    """After the code exchange: save tokens, then (best effort) the API key and models.

    ``adjust`` changes the credentials before they are saved (an import keeps the
    expiry and API key the other program had).
    """
    name = provider.name
    problem = token_answer_problem(answer)
    if problem:
        raise LoginError(f"{provider.title} answered the sign-in with an unusable answer ({problem}). "
                         f"Nothing was saved; run `{hint}` to try again.")
    credentials = provider.credentials_from(answer, http=http, nonce=nonce)
    credentials.account_name = account
    if adjust is not None:
        adjust(credentials)

    warnings: list[str] = []
    # A credential with no expiry (a GitHub token used as it is, an API key) does not end.
    if not credentials.refresh_token and credentials.expires_at is not None and provider.has("refresh_tokens"):
        left = credentials.seconds_left()
        until = f" in about {max(round(left / 60), 1)} minutes" if left is not None else " when the access token does"
        warnings.append(
            f"{provider.title} issued no refresh token, so this sign-in ends{until}; then run `{hint}` again."
        )
    record = record_name(name, account)
    tokens_path = store.tokens_path(record)
    _set_aside_if_corrupt(tokens_path, warnings)
    previous = _previous_sign_in(store, name, account)
    first_account = not store.records(name)
    save_credentials(store, credentials, space=space)
    discard_pending(store, record)  # an unfinished refresh of the previous sign-in is void now
    if first_account:
        store.set_default_account(name, account)  # the first account is the default, whatever its name
    return _finish_login(provider, store, http, credentials, ui, warnings, previous, record)


def _finish_login(provider: Provider, store: Store, http: HttpClient, credentials: Credentials, ui: LoginUI,
                  warnings: list[str], previous: Credentials | None, record: str) -> LoginResult:
    """The optional steps after the tokens are saved: profile, API key, models, revoking the replaced sign-in."""
    from .provider import account_prefix

    name = provider.name
    tokens_path = store.tokens_path(record)

    if provider.has("account_profile"):
        try:
            profile = provider.call("account_profile", required=False, http=http, credentials=credentials)
        except OAuthHubError as exc:
            warnings.append(f"Could not read the account's profile: {exc}")
        else:
            if profile:
                credentials.account = {**credentials.account, **profile}
                save_credentials(store, credentials)

    if provider.has("obtain_api_key") and not credentials.api_key:
        ui.step("Requesting an API key…")
        refused = provider.attach_api_key(credentials, http)
        if refused:
            warnings.append(refused)
        elif credentials.api_key:
            save_credentials(store, credentials)

    models: dict[str, dict[str, Any]] = {}
    if provider.has("list_models"):  # an identity-only provider (plain OIDC) has none
        ui.step("Listing the models this account can use…")
        try:
            is_default = credentials.account_name == store.default_account(name)
            models = build_model_entries(provider, http, credentials,
                                         prefix=account_prefix(provider.settings, credentials.account_name, is_default))
        except OAuthHubError as exc:
            warnings.append(f"Could not list models: {exc}")
    models_path = store.models_path(record)
    if models:
        try:
            write_model_entries(models_path, models, provider.settings["oauth_source"])
        except CorruptFileError as exc:
            warnings.append(str(exc))
    revoke_error = _revoke_previous(provider, http, previous, credentials)
    if revoke_error:
        warnings.append(revoke_error)
    other = someone_else(previous, credentials)
    if other is not None:  # a login without --account replaces the default account, whoever held it
        target = command_target(name, credentials.account_name)
        ended = ", and ended it at the provider" if provider.has("revoke_tokens") and not revoke_error else ""
        warnings.append(f"This replaced {target}'s sign-in as {other}{ended}. To keep several side by side, "
                        f"sign in with `oauth-hub login {name} --account NAME`.")
    for message in warnings:
        ui.warning(message)
    return LoginResult(credentials, models, tokens_path, models_path, warnings)


def _previous_sign_in(store: Store, name: str, account: str) -> Credentials | None:
    """The sign-in a new login is about to replace (``None`` if none, or unreadable)."""
    try:
        return load_credentials(name, store, account)
    except OAuthHubError:
        return None


def someone_else(previous: Credentials | None, current: Credentials) -> str | None:
    """Who ``previous`` signed in as, when that is not who ``current`` is; else ``None``.

    By the provider's ``account_id`` where both have one (one person can have a
    personal and a team ChatGPT account under one email), else by email. An identity
    unknown on either side is taken as the same person: nothing to warn about.
    """
    if previous is None:
        return None
    before, now = previous.account or {}, current.account or {}
    for key in ("account_id", "email"):
        old, new = before.get(key), now.get(key)
        if isinstance(old, str) and old and isinstance(new, str) and new:
            if old == new:
                return None
            label = before.get("email") if isinstance(before.get("email"), str) and before.get("email") else old
            return str(label)
    return None


def _revoke_previous(
    provider: Provider, http: HttpClient, previous: Credentials | None, current: Credentials
) -> str | None:
    """Revoke the replaced sign-in's tokens (best effort); the warning to show, if any.

    Only when it really was another sign-in: the same refresh token (a provider that
    gave the same one back) must of course stay valid.
    """
    if previous is None or not previous.refresh_token or previous.refresh_token == current.refresh_token:
        return None
    if not provider.has("revoke_tokens"):
        return None
    try:
        provider.call("revoke_tokens", required=False, http=http, credentials=previous)
    except OAuthHubError as exc:
        return f"Could not revoke the previous {provider.title} sign-in ({exc}); it expires on its own."
    return None


def _set_aside_if_corrupt(path: Path, warnings: list[str]) -> None:
    """A new login must not silently destroy an unreadable token file: keep it aside."""
    try:
        read_json(path)
    except CorruptFileError:
        kept = set_aside(path)
        warnings.append(f"{path} was unreadable; it was kept as {kept.name} and replaced by the new sign-in.")


def build_model_entries(provider: Provider, http: HttpClient, credentials: Credentials,
                        prefix: str | None = None) -> dict[str, dict[str, Any]]:
    """Ask the provider for its models and turn each into a prefixed model entry.

    ``prefix``: the account's (see :func:`oauth_core.accounts.account_prefix`); default the provider's own.
    """
    prefix = provider.settings["prefix"] if prefix is None else prefix
    source = provider.settings["oauth_source"]
    entries: dict[str, dict[str, Any]] = {}
    for model in provider.call("list_models", http=http, credentials=credentials):
        entry = provider.call("model_entry", required=False, model=model, credentials=credentials)
        if not entry:
            continue
        entry = dict(entry)
        entry.setdefault("oauth_source", source)
        entries[f"{prefix}{model['id']}"] = entry
    return entries


def write_model_entries(path: Path, entries: dict[str, dict[str, Any]], source: str) -> None:
    """Replace this provider's entries in ``path``, keeping entries anybody else wrote."""
    existing = read_json(path) or {}
    if not isinstance(existing, dict):
        raise CorruptFileError(f"{path} does not hold a JSON object; it was left untouched.")
    kept = {key: value for key, value in existing.items() if not _owned(value, source)}
    kept.update(entries)
    write_json(path, kept)


def remove_model_entries(path: Path, source: str) -> list[str]:
    """Remove the entries this provider wrote; delete the file if nothing else is left."""
    existing = read_json(path)
    if existing is None:
        return []
    if not isinstance(existing, dict):
        raise CorruptFileError(f"{path} does not hold a JSON object; it was left untouched.")
    removed = sorted(key for key, value in existing.items() if _owned(value, source))
    kept = {key: value for key, value in existing.items() if key not in removed}
    if kept:
        write_json(path, kept)
    else:
        path.unlink(missing_ok=True)
    return removed


def _owned(entry: Any, source: str) -> bool:
    return isinstance(entry, dict) and entry.get("oauth_source") == source

