"""``oauth-hub export`` and ``oauth-hub serve``: the CLI over :mod:`oauth_core.exporters` and :mod:`oauth_core.serve`.

Registered in :mod:`oauth_hub.cli` with ``cli.add_command(export)`` and
``cli.add_command(serve)``. The presentation helpers and engine modules are imported
inside the commands, so importing this module costs nothing and cannot form a cycle
with ``oauth_hub.cli``. Same conventions as there: people read stderr, scripts read
stdout (``--print``, ``--json``, ``--print-key``), and engine errors are one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # pragma: no cover
    from oauth_core.exporters import ExportResult


@click.command()
@click.argument("provider", required=False)
@click.option("--to", "tool", default="code_puppy", show_default=True, metavar="TOOL",
              help="The tool to write entries for: code_puppy, llm, litellm, aider, opencode, or an installed "
                   "third-party exporter (see --list).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="The file to write or merge into (default: the tool's own file; LiteLLM has none).")
@click.option("--print", "print_only", is_flag=True,
              help="Print the resulting file on stdout and write nothing (no file, no backup, no record).")
@click.option("--include-secrets", is_flag=True,
              help="Write the API key (or serve's key) itself into the file instead of an environment variable "
                   "reference. The file then holds a live secret.")
@click.option("--via-serve", is_flag=True,
              help="Point every entry at `oauth-hub serve`, even when the account has an API key.")
@click.option("--serve-port", type=click.IntRange(1, 65535), default=None, metavar="PORT",
              help="The port `oauth-hub serve` listens on (default 4141).")
@click.option("--list", "list_tools", is_flag=True, help="List the installed exporters and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@click.option("--account", metavar="NAME", envvar="OAUTH_HUB_ACCOUNT", default=None,
              help="Which of the provider's accounts (default: $OAUTH_HUB_ACCOUNT, else the default account). "
                   "Another account's entries are named PREFIX-NAME-MODEL and go through `oauth-hub serve`.")
def export(provider: str | None, tool: str, output: Path | None, print_only: bool, include_secrets: bool,
           via_serve: bool, serve_port: int | None, list_tools: bool, as_json: bool, account: str | None) -> None:
    """Write PROVIDER's models into an agent tool's configuration.

    \b
    Entries oauth-hub wrote before are replaced, everything else in the file is kept,
    and the old file is kept as <file>.bak-<time>. Secrets stay in environment
    variables unless --include-secrets. `oauth-hub logout PROVIDER` removes them again.
    \b
      oauth-hub export chatgpt                       # Code Puppy
      oauth-hub export chatgpt --to llm
      oauth-hub export claude_code --to litellm -o litellm.yaml
      oauth-hub export chatgpt --to opencode --print
    """
    from oauth_core.errors import OAuthHubError
    from oauth_core.exporters import export_models, inspect_exporters

    from .cli import out, say, split_target

    if list_tools:
        rows = inspect_exporters()
        if as_json:
            out(json.dumps(rows, indent=2))
            return
        for row in rows:
            if row["error"]:
                say(f"{row['name']:<12} failed to load: {row['error']}", fg="red")
                continue
            if row["note"]:
                say(f"{row['name']:<12} note: {row['description']} is {row['note']}", fg="yellow")
                continue
            where = row["default_path"] or "(--output required)"
            say(f"{row['name']:<12} {row['title']}: {where}")
            say(f"{'':<12} speaks: {', '.join(row['apis'])}; file format: {row['format']}")
        return
    if not provider:
        raise OAuthHubError("Name the provider to export, e.g. `oauth-hub export chatgpt --to llm` "
                            "(or `oauth-hub export --list`).")
    provider, account = split_target(provider, account)
    result = export_models(provider, tool, output=output, print_only=print_only, include_secrets=include_secrets,
                           via_serve=via_serve, serve_port=serve_port, account=account)
    if as_json:
        data = result.to_json()
        if print_only:
            data["text"] = result.text
        out(json.dumps(data, indent=2))
    elif print_only:
        out((result.text or "").rstrip("\n"))
    _report(result, print_only)


def _report(r: ExportResult, print_only: bool) -> None:
    """The human summary on stderr."""
    from .cli import say, target_text

    for skipped in r.skipped:
        say(f"Skipped {skipped['key']}: {skipped['reason']}.", fg="yellow")
    for key in r.conflicts:
        say(f"Kept your own entry {key!r}; oauth-hub's was not written.", fg="yellow")
    for note in r.notes:
        say(f"Note: {note}", fg="yellow")
    count = len(r.models) if not r.conflicts else len(r.keys)
    whose = target_text(r.provider, r.account)  # "chatgpt" or "chatgpt (account work)"
    what = (f"{count} {whose} model{'' if count == 1 else 's'}" if not r.conflicts
            else f"{count} {whose} entr{'y' if count == 1 else 'ies'}")
    if print_only:
        say(f"{what} for {r.tool}; nothing was written (--print).")
    elif r.written:
        say(f"Wrote {what} to {r.path}.", fg="green")
        if r.backup:
            say(f"  Previous file kept as {r.backup}")
        if r.removed_stale:
            say(f"  Replaced {r.removed_stale} entries an earlier export wrote.")
    elif r.keys:
        say(f"{r.path} already has these {what}; nothing to change.")
    else:
        say(f"Nothing to write to {r.path}.")
    for line in r.instructions:
        say(f"  {line}")


@click.command()
@click.option("--port", type=click.IntRange(0, 65535), default=4141, show_default=True,
              help="The port to listen on (0: any free port). Exported configs name it: keep it fixed.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="A loopback address to listen on (127.0.0.1, localhost or ::1); nothing else is allowed.")
@click.option("--stable-key", is_flag=True,
              help="Use the key kept in the home (serve_key, mode 0600) instead of a new one per run, so tools "
                   "configured with it keep working after a restart.")
@click.option("--print-key", is_flag=True,
              help="Print the stable key on stdout (creating it if needed) and exit.")
@click.option("--quiet", "-q", is_flag=True, help="Do not log requests on stderr.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the base URL, key and routes as one JSON line on stdout once listening.")
def serve(port: int, host: str, stable_key: bool, print_key: bool, quiet: bool, as_json: bool) -> None:
    """One local OpenAI- and Anthropic-compatible endpoint for every signed-in provider.

    \b
    Point OpenAI clients at http://127.0.0.1:4141/v1 and Anthropic clients at
    http://127.0.0.1:4141, with model names such as chatgpt/gpt-5 or
    claude_code/claude-sonnet-4-20250514 (GET /v1/models lists them). Requests are
    translated between the APIs where needed and get each backend's rules; every
    request gets valid credentials (a 401 triggers one refresh and one retry). The raw
    routes /PROVIDER/... forward to the provider's own API. Clients must send the local
    key as 'Authorization: Bearer KEY' or 'x-api-key: KEY'.
    """
    from oauth_core import serve as hub_serve

    from .cli import out, say

    if print_key:
        out(hub_serve.stable_key())
        return
    key = hub_serve.stable_key() if stable_key else hub_serve.new_key()
    server = hub_serve.make_server(host=host, port=port, key=key,
                                   log=None if quiet else lambda line: say(f"  {line}"))
    routes = server.routes()
    say(f"oauth-hub serve is listening on {server.base_url} (Ctrl+C to stop).", fg="green", bold=True)
    if stable_key:  # a long-lived key is not printed where logs may keep it
        say(f"  Local key: {key[:4]}… (the stable key; `oauth-hub serve --print-key` prints it)")
    else:
        say(f"  Local key: {key}")
    say("  Send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'"
        + ("; it stays the same across restarts (--stable-key)." if stable_key else "; it changes every run."))
    if not routes:
        say("  No provider is signed in yet: run `oauth-hub login PROVIDER` (serve picks it up).", fg="yellow")
    else:
        say(f"  OpenAI clients: {server.base_url}/v1   Anthropic clients: {server.base_url}")
    for row in routes:
        if row["error"]:
            say(f"  {row['url']}  (unavailable: {row['error']})", fg="yellow")
            continue
        models = row.get("models") or []
        if models:
            shown = ", ".join(models[:4]) + (", …" if len(models) > 4 else "")
            say(f"  models: {shown}")
        say(f"  {row['url']}/...  ->  {row['upstream']}/...  ({row['mode'].replace('_', ' ')}, raw)")
    if as_json:
        out(json.dumps({"base_url": server.base_url, "port": server.port, "key": key, "routes": routes}))
    hub_serve.run(server)
    say("Stopped.")
