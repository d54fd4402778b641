"""``oauth-hub``: the command line over :mod:`oauth_core`.

A thin layer: each command calls one engine function and presents its result. Human
messages go to stderr; stdout carries only what a script would read (the token, JSON,
the status table). Colour is used only on a terminal and never with ``NO_COLOR``.
Engine modules are imported inside the commands so ``oauth-hub token`` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, NoReturn

import click

# -- presentation helpers ------------------------------------------------------------


def _colour_ok(stream: Any) -> bool:
    return "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()


def say(message: str = "", *, fg: str | None = None, bold: bool = False, nl: bool = True) -> None:
    """A human message on stderr."""
    if (fg or bold) and _colour_ok(sys.stderr):
        message = click.style(message, fg=fg, bold=bold)
    click.echo(message, err=True, nl=nl)


def out(text: str) -> None:
    """Data on stdout, never coloured."""
    click.echo(text)


def fail(message: str, code: int = 1) -> NoReturn:
    say(f"Error: {message}", fg="red")
    sys.exit(code)


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    if seconds >= 86400:
        return f"{seconds // 86400}d {seconds % 86400 // 3600}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 60}:{seconds % 60:02d}"


DEBUG_ENV = "OAUTH_HUB_DEBUG"


def _debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def account_option(function: Any) -> Any:
    """``--account NAME`` (or ``$OAUTH_HUB_ACCOUNT``): which of the provider's accounts a command uses."""
    return click.option(
        "--account", metavar="NAME", envvar="OAUTH_HUB_ACCOUNT", default=None,
        help="Which of the provider's accounts (default: $OAUTH_HUB_ACCOUNT, else the provider's default account; "
             "`oauth-hub accounts` lists them). PROVIDER@NAME works too.")(function)


def split_target(provider: str, account: str | None) -> tuple[str, str | None]:
    """``chatgpt@work`` (the gateway's spelling) is ``chatgpt --account work``."""
    name, sep, named = provider.partition("@")
    if not sep:
        return provider, account
    if account is not None and account != named and "OAUTH_HUB_ACCOUNT" not in os.environ:
        fail(f"{provider} and --account {account} name different accounts; give one of them.", 2)
    return name, named


def target_text(provider: str, account: str | None) -> str:
    """``chatgpt`` or ``chatgpt (account work)``, for messages."""
    return provider if account in (None, "main") else f"{provider} (account {account})"


class HubGroup(click.Group):
    """Turns every error into one red line and an exit code, not a traceback.

    Engine errors carry their own words. An OS error that escaped the engine is named
    with its file and what to do; anything else (a bug) gets one line that says how to
    see the traceback: ``OAUTH_HUB_DEBUG=1`` prints it (for every error) before the line.
    """

    def invoke(self, ctx: click.Context) -> Any:
        from oauth_core.errors import OAuthHubError

        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except OAuthHubError as exc:
            _traceback()
            fail(str(exc), getattr(exc, "exit_code", 1))
        except KeyboardInterrupt:
            say("")
            fail("Interrupted; nothing was changed.", 130)
        except OSError as exc:
            from oauth_core.store import describe_os_error

            _traceback()
            fail(describe_os_error(exc))
        except RecursionError:
            _traceback()
            fail(f"Some input is nested too deeply to read (a file or an answer). Run the command again with "
                 f"{DEBUG_ENV}=1 to see which.")
        except Exception as exc:
            _traceback()
            fail(f"oauth-hub failed unexpectedly ({type(exc).__name__}). Run the command again with {DEBUG_ENV}=1 "
                 "to see where, and report it.")


def _traceback() -> None:
    if _debugging():
        import traceback

        traceback.print_exc()


@click.group(cls=HubGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="oauth-hub", prog_name="oauth-hub")
def cli() -> None:
    """Sign in to AI subscriptions once; give every agent tool fresh tokens.

    \b
    Start with:  oauth-hub login chatgpt
    Files live in $OAUTH_HUB_HOME (default: your platform's config dir).
    """


# -- login ---------------------------------------------------------------------------


class TerminalLoginUI:
    """Shows login progress on stderr: the URL always, a countdown while waiting.

    On a terminal the countdown updates in place; when a redirect URL may be pasted, it
    sits on the line above the input prompt (saved/restored cursor) so typing is not
    disturbed. Off a terminal it prints a line a minute.
    """

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.title = provider  # replaced by the provider's own title when the login begins
        self.live = sys.stderr.isatty()
        self.prompting = False  # a paste prompt is on screen below the countdown
        self.counting = False  # an in-place countdown occupies the current line
        self._last_minute: int | None = None
        self.callback_host = "127.0.0.1"  # as written in the redirect URI (some providers want localhost)

    def _line(self, message: str, **style: Any) -> None:
        """Print a whole line without tearing the countdown or the prompt."""
        if self.prompting:
            click.echo("\r\033[K", err=True, nl=False)
            say(message, **style)
            click.echo("\n> ", err=True, nl=False)  # fresh countdown line, fresh prompt
            return
        if self.counting:
            click.echo("\r\033[K", err=True, nl=False)
        say(message, **style)

    def finish(self) -> None:
        """Leave the terminal on a clean line."""
        if self.prompting or self.counting:
            click.echo("\r\033[K", err=True, nl=False)
        self.prompting = self.counting = False

    def notice(self, message: str) -> None:
        self._line(message)

    def warning(self, message: str) -> None:
        self._line(f"Warning: {message}", fg="yellow")

    def begin(self, title: str) -> None:
        self.title = title

    def redirect_uri(self, uri: str) -> None:
        from urllib.parse import urlsplit

        self.callback_host = urlsplit(uri).hostname or self.callback_host

    def choose_variant(self, title: str, variants: list[dict[str, str]]) -> str | None:
        """Ask on a terminal which kind of sign-in; elsewhere say which one is used."""
        names = [v["name"] for v in variants]
        others = ", ".join(f"--variant {n}" for n in names[1:])
        if not (sys.stdin is not None and sys.stdin.isatty() and sys.stderr.isatty()):
            say(f"Signing in with {variants[0].get('title') or names[0]} (the default; {others} for another).")
            return None
        say(f"Which {title} sign-in?")
        for number, variant in enumerate(variants, 1):
            description = f" — {variant['description']}" if variant.get("description") else ""
            say(f"  {number}. {variant.get('title') or variant['name']}{description}")
        choice = click.prompt("Choose", type=click.IntRange(1, len(variants)), default=1, err=True)
        say("")
        return names[choice - 1]

    def auth_url(self, url: str) -> None:
        say(f"Sign in to {self.title} in your browser. If it does not open, open this URL:")
        say("")
        say(f"  {url}", bold=True)
        say("")

    def browser_opened(self, opened: bool) -> None:
        from oauth_core.browser import why_no_browser

        if opened:
            say("Opened the sign-in page in your browser.")
            return
        reason = why_no_browser()
        say(f"Could not open a browser here{f' ({reason})' if reason else ''}: open the URL above on any machine.",
            fg="yellow")

    def waiting(self, port: int | None, timeout: float, paste: bool) -> None:
        if port is None:
            say(f"After signing in, the page shows a code: copy it, paste it here and press Enter "
                f"(up to {_duration(timeout)}; Ctrl+C to stop).")
        else:
            say(f"Waiting for the sign-in on http://{self.callback_host}:{port} "
                f"(up to {_duration(timeout)}; Ctrl+C to stop).")
            if paste:
                say("If the browser cannot reach this machine (SSH, a container), it ends on an error page: "
                    "copy that page's address from the address bar, paste it here and press Enter.")
        if paste and self.live:
            click.echo(f"Waiting… {_duration(timeout)} left\n> ", err=True, nl=False)
            self.prompting = True

    def pasted(self, accepted: bool, message: str) -> None:
        if accepted:
            self.finish()
            say(message, fg="green")
        else:
            self._line(message, fg="yellow")

    def device_code(self, verification_uri: str, user_code: str, expires_in: float) -> None:
        say("To sign in, open this page on any device:")
        say("")
        say(f"    {verification_uri}", bold=True)
        say("")
        say("and enter the code:")
        say("")
        say(f"    {user_code}", bold=True, fg="cyan")
        say("")
        say(f"The code expires in {_duration(expires_in)}. Waiting for approval (Ctrl+C to stop)…")

    def tick(self, seconds_left: float) -> None:
        text = f"Waiting… {_duration(seconds_left)} left"
        if self.prompting:
            click.echo(f"\0337\033[1A\r\033[K{text}\0338", err=True, nl=False)
        elif self.live:
            self.counting = True
            click.echo(f"\r\033[K{text}", err=True, nl=False)
        else:
            minute = int(seconds_left // 60)
            if self._last_minute is not None and minute < self._last_minute:
                say(f"Still waiting… {_duration(seconds_left)} left")
            self._last_minute = minute

    def step(self, message: str) -> None:
        self.finish()
        say(message)


@cli.command()
@click.argument("provider")
@click.option("--no-browser", is_flag=True, help="Only print the URL; do not try to open a browser.")
@click.option("--device", is_flag=True, help="Sign in with a code shown here, on any device (no callback needed).")
@click.option("--manual", is_flag=True,
              help="No callback server: the provider's page shows a code to paste here (where supported).")
@click.option("--variant", metavar="NAME",
              help="Which kind of sign-in, for providers that offer several (asked on a terminal otherwise).")
@click.option("--console", is_flag=True, help="Short for --variant console (Claude: an Anthropic Console account).")
@click.option("--timeout", type=click.FloatRange(min=1), help="Seconds to wait for the sign-in (default from config).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout when done.")
@account_option
def login(provider: str, no_browser: bool, device: bool, manual: bool, variant: str | None, console: bool,
          timeout: float | None, as_json: bool, account: str | None) -> None:
    """Sign in to PROVIDER in the browser and store its tokens and models.

    \b
    The URL is always printed. Over SSH or in a container, open it anywhere and paste
    the address the browser ends on back here, or use --device.
    --account NAME adds another account of the same provider (or replaces the sign-in
    of that account); the first account is the default.
    Claude: --console signs in an Anthropic Console (API billing) account instead of
    a Claude Pro/Max subscription; on a terminal you are asked.
    """
    from oauth_core.login import device_login
    from oauth_core.login import login as browser_login

    provider, account = split_target(provider, account)
    if console:
        if variant not in (None, "console"):
            fail(f"--console and --variant {variant} contradict each other; give one of them.", 2)
        variant = "console"
    ui = TerminalLoginUI(provider)
    try:
        if device:
            result = device_login(provider, open_browser=False, timeout=timeout, ui=ui, variant=variant,
                                  account=account)
        else:
            paste = sys.stdin if sys.stdin is not None and not sys.stdin.closed else None
            result = browser_login(provider, open_browser=not no_browser, timeout=timeout, ui=ui, paste=paste,
                                   manual=manual, variant=variant, account=account)
    finally:
        ui.finish()
    summary = result.summary()
    say("")
    say(f"Signed in to {target_text(provider, summary['account'])}.", fg="green", bold=True)
    if summary["email"]:
        account = summary["email"] + (f" ({summary['account_id']})" if summary["account_id"] else "")
    else:
        account = summary["account_id"] or "unknown"
    say(f"  Account:  {account}")
    say(f"  Plan:     {summary['plan'] or 'unknown'}")
    say(f"  API key:  {'yes' if summary['has_api_key'] else 'no (the access token is used instead)'}")
    say(f"  Models:   {len(summary['models'])} written to {summary['models_path']}")
    say(f"  Tokens:   {summary['tokens_path']}")
    if as_json:
        out(json.dumps(summary, indent=2))


# -- status --------------------------------------------------------------------------


@cli.command()
@click.argument("provider", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per account.")
@click.option("--account", metavar="NAME", default=None,
              help="Only this account of PROVIDER (default: all of its accounts).")
def status(provider: str | None, as_json: bool, account: str | None) -> None:
    """Show which providers are signed in, as whom, and until when (every account).

    Naming a PROVIDER also asks it how much of the plan is left (quotas, credit), where
    it can say: one request to the provider per account.
    """
    from oauth_core.accounts import status as read_status

    if provider is not None:
        provider, account = split_target(provider, account)
    elif account is not None:
        fail("--account needs a PROVIDER: oauth-hub status PROVIDER --account NAME.", 2)
    rows = read_status(provider, refresh=True, limits=provider is not None, account=account)
    if as_json:
        out(json.dumps(rows, indent=2))
    else:
        for row in rows:
            _print_status(row)
    if provider is not None and not any(row["logged_in"] for row in rows):
        sys.exit(1)  # with --json too: a script asks "is NAME signed in?" by the exit code


def _print_status(row: dict[str, Any]) -> None:
    name = row["provider"]
    if row.get("account") is not None and (row["account"] != "main" or not row.get("default")):
        name = f"{name} (account {row['account']}{', the default' if row.get('default') else ''})"
    if row["error"] and not row["logged_in"]:
        out(f"{name}: unreadable — {row['error']}")
        return
    if not row["logged_in"]:
        hint = row["provider"] + (f" --account {row['account']}" if row.get("account") not in (None, "main") else "")
        out(f"{name}: not signed in (run `oauth-hub login {hint}`)")
        return
    out(f"{name}: signed in as {row['email'] or row['account_id'] or 'unknown'}")
    if row["account_id"]:
        out(f"  account:  {row['account_id']}")
    out(f"  plan:     {row['plan'] or 'unknown'}")
    key = "no"
    if row["has_api_key"]:
        age = row["api_key_age_days"]
        key = "yes" + ("" if age is None else " (obtained today)" if age < 1 else f" (obtained {age:.0f} days ago)")
    out(f"  API key:  {key}")
    if row["expires_in"] is not None:
        if row["expires_in"] > 0:
            when = f"expires in {_duration(row['expires_in'])}"
        elif row.get("can_refresh", True):
            when = "expired (refreshed on next use)"
        else:
            when = f"expired (no refresh token: run `oauth-hub login {name}`)"
        out(f"  token:    {when} ({row['expires_at']})")
    if not row.get("can_refresh", True) and (row["expires_in"] or 0) > 0:
        out(f"  refresh:  none (the IdP issued no refresh token; run `oauth-hub login {name}` when it expires)")
    names = ", ".join(row["models"][:5]) + (", …" if len(row["models"]) > 5 else "")
    out(f"  models:   {len(row['models'])}" + (f" ({names})" if names else ""))
    usage = row.get("usage")
    for i, window in enumerate(usage["windows"] if usage else []):
        span = window.get("window_minutes")
        size = "" if span is None else f" of {span // 1440} d" if span % 1440 == 0 else (
            f" of {span // 60} h" if span % 60 == 0 else f" of {span} min")
        reset = ""
        if "resets_in" in window:
            reset = f", resets in {_duration(window['resets_in'])} ({window['resets_at']})"
        out(f"  {'usage:' if i == 0 else '':<10}{window['name']} {window['used_percent']:g}% used{size}{reset}")
    if usage:
        out(f"  {'':<10}(as the backend reported at {usage['seen_at']}, through oauth-hub serve)")
    limits = row.get("limits")
    if isinstance(limits, dict) and limits.get("summary"):
        out(f"  limits:   {limits['summary']}")
    if row["error"]:
        out(f"  problem:  {row['error']}")


# -- token ---------------------------------------------------------------------------


@cli.command()
@click.argument("provider")
@click.option("--api-key", is_flag=True, help="Print the API key instead of the access token.")
@account_option
def token(provider: str, api_key: bool, account: str | None) -> None:
    """Print PROVIDER's access token (or API key) on stdout, for $(oauth-hub token …).

    The token is refreshed first when it is about to expire.
    """
    from oauth_core.tokens import get_api_key, get_token

    provider, account = split_target(provider, account)
    out(get_api_key(provider, account=account) if api_key else get_token(provider, account=account))


@cli.command()
@click.argument("provider")
@account_option
def refresh(provider: str, account: str | None) -> None:
    """Refresh PROVIDER's tokens now, even if they are still valid."""
    from oauth_core.tokens import refresh_credentials

    provider, account = split_target(provider, account)
    credentials = refresh_credentials(provider, force=True, account=account)
    left = credentials.seconds_left()
    when = f"; the access token is valid for {_duration(left)}" if left is not None else ""
    say(f"Refreshed the {target_text(provider, credentials.account_name)} sign-in{when}.", fg="green")


@cli.command()
@click.argument("provider")
@account_option
def env(provider: str, account: str | None) -> None:
    """Print `export NAME=value` lines: eval "$(oauth-hub env PROVIDER)"."""
    import shlex

    from oauth_core.tokens import get_environment

    provider, account = split_target(provider, account)
    for name, value in sorted(get_environment(provider, account=account).items()):
        out(f"export {name}={shlex.quote(value)}")


@cli.command(name="exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("provider")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@account_option
def exec_(provider: str, command: tuple[str, ...], account: str | None) -> None:
    """Run COMMAND with PROVIDER's credentials in its environment.

    \b
    Example: oauth-hub exec chatgpt -- code-puppy -m chatgpt-gpt-4o -p "Say hello"
             oauth-hub exec chatgpt --account work -- opencode run -m oauth-hub-chatgpt/gpt-4o "Say hello"
    The command's exit code is passed through.
    """
    import subprocess

    from oauth_core.tokens import get_environment

    while command and (command[0] == "--account" or command[0].startswith("--account=")):
        # After PROVIDER everything is COMMAND (its own options must pass untouched), except
        # our --account right after PROVIDER.
        if command[0] == "--account":
            if len(command) < 2:
                fail("--account needs a NAME.", 2)
            account, command = command[1], command[2:]
        else:
            account, command = command[0].split("=", 1)[1], command[1:]
    provider, account = split_target(provider, account)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        fail(f"Name a command to run: oauth-hub exec {provider} -- COMMAND [ARGS]…", 2)
    environment = dict(os.environ, **get_environment(provider, account=account))
    try:
        completed = subprocess.run(list(command), env=environment)
    except FileNotFoundError:
        fail(f"Command not found: {command[0]}", 127)
    except PermissionError:
        fail(f"Command is not executable: {command[0]}", 126)
    sys.exit(completed.returncode if completed.returncode >= 0 else 128 - completed.returncode)


# -- logout --------------------------------------------------------------------------


@cli.command()
@click.argument("provider")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@account_option
def logout(provider: str, as_json: bool, account: str | None) -> None:
    """Revoke PROVIDER's sign-in, delete its tokens and remove its model entries.

    With --account NAME only that account (and only its exports) goes; without, the
    default account.
    """
    from oauth_core.accounts import logout as run_logout

    provider, account = split_target(provider, account)
    report = run_logout(provider, account=account)
    if as_json:
        out(json.dumps(report, indent=2))
        return
    provider = target_text(provider, report["account"])
    for note in report["notes"]:
        say(f"Note: {note}", fg="yellow")
    exports = report.get("removed_exports") or []
    if not report["was_logged_in"] and not report["removed_models"] and not exports:
        others = report["accounts"]
        named = f" (its accounts: {', '.join(others)}; check the name)" if others else ""
        say(f"Not signed in to {provider}{named}; nothing to do.")
        return
    if report["revoked"]:
        say(f"Revoked the {provider} sign-in at the provider.")
    elif report["revoke_error"]:
        say(f"Could not revoke at the provider ({report['revoke_error']}); removed the local copy anyway.",
            fg="yellow")
    if report.get("revoke_hint"):
        say(report["revoke_hint"], fg="yellow")
    elif report["revoked"] is False and not report["revoke_error"]:
        say(f"{provider} offers no way to revoke a sign-in; the tokens were deleted here and expire on their own.")
    if report["was_logged_in"]:
        say(f"Deleted the {provider} tokens.")
    if report["removed_models"]:
        say(f"Removed {len(report['removed_models'])} model entries.")
    for item in exports:
        say(f"Removed {_export_summary(item)}.")
    say(f"Logged out of {provider}.", fg="green")


def _export_summary(item: Any) -> str:
    """One removed export, e.g. "3 entries from ~/.code_puppy/extra_models.json"."""
    if not isinstance(item, dict):
        return str(item)
    count = len(item.get("keys") or [])
    backup = f" (backup: {item['backup']})" if item.get("backup") else ""
    return f"{count} exported entries from {item.get('path', '?')} ({item.get('exporter')}){backup}"


# -- accounts ------------------------------------------------------------------------


@cli.command(context_settings={"ignore_unknown_options": False})
@click.argument("args", nargs=-1, metavar="[PROVIDER] | default PROVIDER NAME")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
def accounts(args: tuple[str, ...], as_json: bool) -> None:
    """List the signed-in accounts, or choose a provider's default account.

    \b
      oauth-hub accounts                         every account of every provider
      oauth-hub accounts chatgpt [--json]        the accounts of one provider
      oauth-hub accounts default chatgpt work    use `work` when no --account is given
    \b
    Add an account with `oauth-hub login PROVIDER --account NAME`; remove one with
    `oauth-hub logout PROVIDER --account NAME`. The default account's model entries keep
    the provider's names (chatgpt-gpt-5); another's carry its name (chatgpt-work-gpt-5).
    """
    from oauth_core.accounts import list_accounts, set_default_account

    if args and args[0] == "default":
        if len(args) != 3:
            fail("Usage: oauth-hub accounts default PROVIDER NAME, e.g. `oauth-hub accounts default chatgpt work` "
                 "(`oauth-hub accounts` lists the names).", 2)
        report = set_default_account(args[1], args[2])
        if as_json:
            out(json.dumps(report, indent=2))
            return
        if report["previous"] == report["account"]:
            say(f"{args[2]} already is the default {args[1]} account.")
            return
        for note in report["notes"]:
            say(f"Note: {note}", fg="yellow")
        say(f"{args[2]} is now the default {args[1]} account (it was {report['previous']}).", fg="green")
        return
    if len(args) > 1:
        fail("Usage: oauth-hub accounts [PROVIDER] | oauth-hub accounts default PROVIDER NAME", 2)
    rows = list_accounts(args[0] if args else None)
    if as_json:
        out(json.dumps(rows, indent=2))
        return
    if not rows:
        say("No accounts signed in: run `oauth-hub login PROVIDER` (--account NAME to add more).")
        if args:
            sys.exit(1)
        return
    header = ("PROVIDER", "ACCOUNT", "EMAIL", "PLAN", "DEFAULT", "EXPIRES")
    table = [header]
    for row in rows:
        left = row["expires_in"]
        expires = "-" if left is None else (f"in {_duration(left)}" if left > 0 else "expired")
        if row["error"]:
            expires = "unreadable"
        table.append((row["provider"], row["account"], row["email"] or "-", row["plan"] or "-",
                      "*" if row["default"] else "", expires))
    widths = [max(len(str(line[i])) for line in table) for i in range(len(header))]
    for line in table:
        out("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


# -- import ---------------------------------------------------------------------------


@cli.command(name="import")
@click.argument("source", required=False)
@click.option("--account", metavar="NAME", envvar="OAUTH_HUB_ACCOUNT", default=None,
              help="Store the sign-in as this account of the provider (default: the default account).")
@click.option("--from", "from_path", type=click.Path(dir_okay=False), default=None,
              help="Read the other program's file from here instead of its usual place.")
@click.option("--list", "list_sources", is_flag=True, help="List what can be imported, and from where.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
def import_(source: str | None, account: str | None, from_path: str | None, list_sources: bool,
            as_json: bool) -> None:
    """Take over the sign-in of another program: codex (~/.codex/auth.json) or claude-code.

    \b
      oauth-hub import codex                    # $CODEX_HOME/auth.json, as the default chatgpt account
      oauth-hub import claude-code --account team
    \b
    Refresh tokens rotate: two programs refreshing one sign-in end it for both. So the
    sign-in moves here, and the other program's copy is removed (nothing is revoked):
    sign that program in again afterwards for a sign-in of its own. Quit it first.
    """
    from oauth_core.importing import import_sign_in, import_sources

    if list_sources or not source:
        rows = import_sources()
        if as_json:
            out(json.dumps(rows, indent=2))
            return
        for row in rows:
            out(f"{row['name']:<12} {row['title']}, into {row['provider']}: {row['path']}")
        if not source and not list_sources:
            fail("Name what to import from, e.g. `oauth-hub import codex`.", 2)
        return
    summary = import_sign_in(source, account=account, path=from_path)
    for warning in summary["warnings"]:
        say(f"Warning: {warning}", fg="yellow")
    if as_json:
        out(json.dumps(summary, indent=2))
    say(f"Imported the {source} sign-in as {target_text(summary['provider'], summary['account'])}: "
        f"{summary['email'] or 'unknown'} ({summary['plan'] or 'plan unknown'}), {len(summary['models'])} models.",
        fg="green")
    if summary["released"]:
        say(summary["released"])
    say(f"Use it like any sign-in: oauth-hub token {summary['target']}")


# -- providers -----------------------------------------------------------------------


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def providers(as_json: bool) -> None:
    """List installed providers, what each can do, and any that failed to load.

    \b
    Each provider is imported and checked as a command would load it. Set
    OAUTH_HUB_TRACE_PLUGINS=1 to see every hook call on stderr (never a secret).
    """
    from oauth_core.inventory import inspect_providers
    from oauth_core.plugins import LOAD_ENV, excluded_providers

    rows = inspect_providers()
    left_out = excluded_providers()
    if left_out:
        say(f"Note: {LOAD_ENV} leaves out {', '.join(left_out)}.", fg="yellow")
    if as_json:
        out(json.dumps([r.to_json() for r in rows], indent=2))
    elif not rows:
        out("No providers installed.")
    for row in rows if not as_json else []:
        origin = f"{row.distribution} {row.version}" if row.distribution else row.module
        if row.error:
            out(f"{row.name:<14} FAILED  ({origin}): {row.error}")
        elif row.note:
            out(f"{row.name:<14} note: {origin} is {row.note}")
        else:
            out(f"{row.name:<14} {origin}" + (f" — {row.description}" if row.description else ""))
            can = row.to_json()["capabilities"]
            out(f"{'':<14} can: {', '.join(can) if can else 'nothing yet (no login hooks)'}")
    if any(r.error for r in rows):
        sys.exit(1)  # something is broken (a name merely shadowed by a built-in is a note, not a failure)


# -- doctor ---------------------------------------------------------------------------


@cli.command()
@click.argument("provider", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of checks.")
@click.option("--timeout", type=click.FloatRange(min=0.5), default=5.0, show_default=True,
              help="Seconds to wait for each network check.")
def doctor(provider: str | None, as_json: bool, timeout: float) -> None:
    """Check what breaks logins before it does: ports, browser, home, network, clock."""
    from oauth_core.doctor import run_checks

    checks = run_checks(provider, timeout=timeout)
    if as_json:
        out(json.dumps([c.to_json() for c in checks], indent=2))
    else:
        marks = {"ok": ("ok", "green"), "warning": ("warn", "yellow"), "failed": ("FAIL", "red")}
        colour = _colour_ok(sys.stdout)
        for check in checks:
            mark, fg = marks[check.status]
            label = f"{mark:<4}"
            if colour:
                label = click.style(label, fg=fg, bold=True)
            out(f"{label} {check.name}: {check.summary}")
            if check.fix:
                out(f"     fix: {check.fix}")
    if any(c.ok is False for c in checks):
        sys.exit(1)


# -- config --------------------------------------------------------------------------


@cli.group()
def config() -> None:
    """Read and change provider settings in config.toml."""


def _split_key(key: str) -> tuple[str, str]:
    provider, _, setting = key.partition(".")
    if not provider or not setting:
        fail(f"{key!r} is not PROVIDER.SETTING (for example chatgpt.prefix) or storage.")
    return provider, setting


def _hub_setting(key: str) -> bool:
    from oauth_core.config import HUB_SETTINGS

    return key in HUB_SETTINGS


def _provider(name: str) -> Any:
    from oauth_core.provider import Provider
    from oauth_core.store import Store

    return Provider.load(name, Store())


@config.command("get")
@click.argument("key")
def config_get(key: str) -> None:
    """Print one effective setting, e.g. chatgpt.port (or storage)."""
    if _hub_setting(key):
        from oauth_core.store import Store
        from oauth_core.tokens import storage_setting

        out(storage_setting(Store()))
        return
    name, setting = _split_key(key)
    settings = _provider(name).settings
    if setting not in settings:
        fail(f"{name} has no setting {setting!r}. Run `oauth-hub config show {name}` to list them.")
    value = settings[setting]
    out(json.dumps(value) if not isinstance(value, str) else value)


@config.command("set")
@click.argument("key")
@click.argument("value")
def config_set(key: str, value: str) -> None:
    """Override a setting, e.g. `config set chatgpt.prefix gpt-`.

    \b
    For a secret (client_secret …), pass - as VALUE to read it from stdin:
      oauth-hub config set work.client_secret - < secret.txt
    Where sign-ins are kept (moves the stored ones at once):
      oauth-hub config set storage keyring      # or file, or auto
    """
    from oauth_core import config as cfg
    from oauth_core.provider import MASK, secret_setting_names
    from oauth_core.store import Store

    if _hub_setting(key):
        _set_storage(value)
        return
    name, setting = _split_key(key)
    provider = _provider(name)
    if setting not in provider.settings or setting == "name":
        fail(f"{name} has no setting {setting!r}. Run `oauth-hub config show {name}` to list them.")
    secret = setting in secret_setting_names(provider.settings)
    if secret and value == "-":  # a secret on the command line is visible to `ps`; read it from stdin instead
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            fail(f"No value on stdin for {name}.{setting}.")
    parsed = cfg.parse_value(value, provider.settings[setting], key)
    store = Store()
    store.ensure()
    cfg.set_value(store.config_path(), name, setting, parsed)
    shown = MASK if secret else json.dumps(parsed)
    say(f"Set {name}.{setting} = {shown} in {store.config_path()}")


@config.command("unset")
@click.argument("key")
def config_unset(key: str) -> None:
    """Remove an override, going back to the provider's default."""
    from oauth_core import config as cfg
    from oauth_core.store import Store

    if _hub_setting(key):
        _set_storage(None)
        return
    name, setting = _split_key(key)
    store = Store()
    if cfg.unset_value(store.config_path(), name, setting):
        say(f"Removed the override of {name}.{setting}.")
    else:
        say(f"{name}.{setting} was not overridden.")


def _set_storage(value: str | None) -> None:
    """`config set storage VALUE` (None: unset): check it can be used here, then move every sign-in."""
    from oauth_core import config as cfg
    from oauth_core import keyring_storage
    from oauth_core.store import Store
    from oauth_core.tokens import apply_storage

    if value is not None and value not in keyring_storage.STORAGE_CHOICES:
        fail(f"storage must be one of {', '.join(keyring_storage.STORAGE_CHOICES)}, not {value!r}.", 2)
    where = keyring_storage.resolve(value or keyring_storage.DEFAULT_STORAGE)  # refuses a keyring that is not there
    store = Store()
    store.ensure()
    if value is None:
        cfg.unset_hub_value(store.config_path(), "storage")
    else:
        cfg.set_hub_value(store.config_path(), "storage", value)
    backend = f" ({keyring_storage.describe_backend()})" if where == "keyring" else ""
    say(f"Set storage = {json.dumps(value or keyring_storage.DEFAULT_STORAGE)} in {store.config_path()}: "
        f"sign-ins are kept in the {'OS keyring' + backend if where == 'keyring' else 'home'}.")
    for row in apply_storage():
        if row.get("error"):
            say(f"Note: {row['record']} stayed where it was: {row['error']}", fg="yellow")
        else:
            say(f"  moved {row['record']} from the {row['from']} to the {row['to']}")


@config.command("add-oidc")
@click.argument("name")
@click.option("--issuer", required=True, help="The IdP's issuer URL (its /.well-known/openid-configuration is read).")
@click.option("--client-id", required=True, help="The public (native) client id registered at the IdP.")
@click.option("--scopes", default=None,
              help="Space-separated scopes. Default: openid plus whichever of profile, email and offline_access "
                   "the IdP lists in its scopes_supported.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Loopback callback port registered at the IdP; 0 picks a free one (RFC 8252).")
@click.option("--redirect-path", default="/callback", show_default=True)
@click.option("--audience", default="", help="An audience/resource parameter, for IdPs that want one.")
@click.option("--no-check", is_flag=True, help="Write the table without reading the IdP's discovery document.")
def config_add_oidc(name: str, issuer: str, client_id: str, scopes: str | None, port: int, redirect_path: str,
                    audience: str, no_check: bool) -> None:
    """Add an OpenID Connect provider NAME that needs no code, only this configuration."""
    from oauth_core import config as cfg
    from oauth_core import plugins
    from oauth_core.provider import check_name
    from oauth_core.store import Store

    check_name(name)
    if name in plugins._entry_points():
        fail(f"{name!r} is an installed provider; pick another name for the OIDC provider.")
    if not redirect_path.startswith("/"):
        fail("--redirect-path must start with '/'.")
    table: dict[str, Any] = {"type": "oidc", "issuer": issuer.rstrip("/"), "client_id": client_id,
                             "port": port, "redirect_path": redirect_path}
    if scopes is not None:
        table["scopes"] = " ".join(scopes.split())
    if audience:
        table["audience"] = audience
    store = Store()
    store.ensure()
    path = store.config_path()
    before = cfg.load(path)
    data = cfg.load(path)
    data.setdefault("providers", {})[name] = table
    cfg.save(path, data)
    if not no_check:
        from oauth_core.errors import OAuthHubError
        from oauth_core.http import HttpClient
        from oauth_core.provider import Provider

        try:
            provider = Provider.load(name, store)
            provider.resolve(HttpClient())  # reads the discovery document: fails now, not at login
        except OAuthHubError as exc:
            cfg.save(path, before)
            fail(f"{exc} Nothing was added (use --no-check to add it anyway).")
        _describe_oidc(name, provider.settings, chosen=scopes is None)
    say(f"Added [providers.{name}] to {path}. Sign in with: oauth-hub login {name}", fg="green")


def _describe_oidc(name: str, settings: dict[str, Any], chosen: bool) -> None:
    """What discovery told us, and what a person may have to set by hand."""
    say(f"Found {settings['issuer']}: sign-in page {settings['authorization_endpoint']}")
    origin = " (from its scopes_supported)" if chosen else ""
    say(f"  Scopes:      {settings['scopes']}{origin}; change with `oauth-hub config set {name}.scopes \"…\"`")
    if "offline_access" not in settings["scopes"].split():
        say("               (no offline_access: if the IdP then issues no refresh token, the sign-in lasts as "
            "long as its access token)")
    say(f"  Revocation:  {settings['revocation_endpoint'] or 'none advertised'}")
    if not settings["revocation_endpoint"]:
        say(f"               logout will only delete the local tokens; if the IdP has a revocation endpoint: "
            f"`oauth-hub config set {name}.revocation_endpoint URL`", fg="yellow")
    say(f"  User info:   {settings['userinfo_endpoint'] or 'none advertised'}")
    device = settings["device_authorization_endpoint"]
    say(f"  Device code: {device + ' (oauth-hub login ' + name + ' --device)' if device else 'none advertised'}")


@config.command("show")
@click.argument("provider", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def config_show(provider: str | None, as_json: bool) -> None:
    """Show effective settings (defaults plus config.toml) of one or all providers.

    Secrets (client_secret and what a provider marks secret) show as ********;
    `oauth-hub config get PROVIDER.KEY` prints one when you need it.
    """
    from oauth_core.plugins import provider_names
    from oauth_core.provider import masked_settings

    names = [provider] if provider else provider_names()
    shown = {name: {k: v for k, v in masked_settings(_provider(name).settings).items() if k != "name"}
             for name in names}
    if as_json:
        out(json.dumps(shown, indent=2))
        return
    for name, settings in shown.items():
        out(f"[providers.{name}]")
        for key, value in sorted(settings.items()):
            out(f"{key} = {json.dumps(value)}")
        out("")


def _register_commands() -> None:
    from .cli_export import export, serve

    cli.add_command(export)
    cli.add_command(serve)


_register_commands()


def _show_notices() -> None:
    """Print the engine's SecurityNotice warnings as "Note:" lines, each time they occur."""
    import warnings

    from oauth_core.errors import PluginNotice, SecurityNotice

    original = warnings.showwarning

    def show(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        if issubclass(category, (SecurityNotice, PluginNotice)):
            say(f"Note: {message}", fg="yellow")
        else:
            original(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    warnings.simplefilter("always", SecurityNotice)
    warnings.simplefilter("always", PluginNotice)


def main() -> None:
    _show_notices()
    cli(prog_name="oauth-hub")


if __name__ == "__main__":  # pragma: no cover
    main()
