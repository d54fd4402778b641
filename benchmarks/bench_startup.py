"""Cold start of the `oauth-hub` commands agent tools run on every call, against Python itself.

Run from a checkout with the package installed:

    python benchmarks/bench_startup.py [--runs 20] [--budget 1.5]

Each command is started ``--runs`` times as a fresh process, round-robin with the
baselines (so drift on a busy machine hits every row alike), after two warm-up runs.
Figures are printed as ratios against ``python -c "import click"`` measured in the same
run; the budget (issue 7) is a median ratio of at most ``--budget`` for each command.

- ``oauth-hub --help``
- ``oauth-hub status --json`` (one fresh sign-in stored, so it only reads files)
- ``oauth-hub token chatgpt`` (a fresh token: no refresh, no network)

Bytecode is cached in a private ``PYTHONPYCACHEPREFIX`` (warmed before timing), as it is
for any normal install: with ``PYTHONDONTWRITEBYTECODE`` set, our own modules would be
compiled from source on every run while click's come precompiled from site-packages,
which measures the compiler, not start-up. ``--no-bytecode-cache`` measures that case.

Then each command is run once under ``python -X importtime`` to list what it imported:
the fresh-token path must import neither ``requests`` nor the JWT/crypto stack, and
listing providers (``status``) must not import provider modules. The costliest imports
beyond the ``import click`` baseline are printed with the module that imported them,
which is where to make an import lazy when a budget fails.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from oauth_core.testing.fake_openai import FakeOpenAI
from oauth_core.testing.seed import seed_sign_in

# Modules whose presence on a path is a budget breach, with the rule they break.
HEAVY = ("requests", "urllib3", "jwt", "cryptography", "pluggy", "providers", "filelock", "http.server")
FORBIDDEN = {
    "token chatgpt": {"requests": "the fresh-token path imports requests",
                      "jwt": "the fresh-token path imports the JWT stack",
                      "cryptography": "the fresh-token path imports the crypto stack"},
    "status --json": {"providers": "listing providers imports provider modules",
                      "jwt": "a status read imports the JWT stack",
                      "requests": "a status read (fresh token) imports requests"},
    "--help": {"providers": "--help imports provider modules", "requests": "--help imports requests"},
}


@dataclass
class Row:
    label: str
    argv: list[str]
    budgeted: bool
    times: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def cli_script() -> list[str]:
    """The installed console script, as people and agent tools run it."""
    script = Path(sys.executable).with_name("oauth-hub")
    return [sys.executable, str(script)] if script.exists() else [sys.executable, "-m", "oauth_hub"]


def run_once(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}; the benchmark needs it to succeed")
    return elapsed


@dataclass
class Import:
    name: str
    self_us: int
    cumulative_us: int
    level: int
    parent: str | None = None
    site: str = "?"  # file:line of the import statement


# Runs a Python script like `python SCRIPT ARGS` but records, for every module imported,
# the file and line of the import statement that first asked for it (a meta-path finder
# that only looks and never finds). Modules it needs itself are imported at exit.
SPY = """
import sys
_sites = {}
class _Spy:
    def find_spec(self, name, path=None, target=None):
        if name not in _sites:
            f = sys._getframe(1)
            while f is not None and f.f_code.co_filename.startswith(("<frozen", "<string>")):
                f = f.f_back
            _sites[name] = f"{f.f_code.co_filename}:{f.f_lineno}" if f is not None else "?"
        return None
sys.meta_path.insert(0, _Spy())
def _dump():
    with open(__import__("os").environ["BENCH_IMPORT_SITES"], "w") as fh:
        fh.writelines(f"{name}\\t{site}\\n" for name, site in _sites.items())
import atexit
atexit.register(_dump)
sys.argv = sys.argv[1:]
import runpy
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def import_tree(argv: list[str], env: dict[str, str], tmp: Path) -> dict[str, Import]:
    """Modules imported by ``argv`` (a Python command line) with their cost and importer.

    ``argv`` is ``[python, SCRIPT, ARGS…]`` or ``[python, "-c", CODE]``; a script runs under
    the import-site spy too.
    """
    sites_file = tmp / "import-sites.json"
    sites_file.unlink(missing_ok=True)
    if argv[1] == "-c":
        command = [argv[0], "-X", "importtime", *argv[1:]]
    else:
        command = [argv[0], "-X", "importtime", "-c", SPY, *argv[1:]]
    done = subprocess.run(command, env=dict(env, BENCH_IMPORT_SITES=str(sites_file)), capture_output=True, text=True)
    sites = dict(line.split("\t", 1) for line in sites_file.read_text().splitlines()) if sites_file.exists() else {}
    rows: list[Import] = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        parts = line.split("|")
        if len(parts) != 3:
            continue
        self_us, cumulative, raw = parts[0].split(":", 1)[1], parts[1], parts[2]
        name = raw.lstrip(" ")
        level = (len(raw) - len(name) - 1) // 2  # one space after "|", then two per nesting level
        try:
            rows.append(Import(name.strip(), int(self_us), int(cumulative), level))
        except ValueError:
            continue
    # importtime prints children before their parent: a row's importer is the next row one level up.
    # A row at level 0 was imported at run time (inside a function), after every module-level import.
    for i, row in enumerate(rows):
        row.site = short_path(sites.get(row.name, "?"))
        for later in rows[i + 1:]:
            if later.level < row.level:
                row.parent = later.name if later.level == row.level - 1 else None
                break
    return {row.name: row for row in rows}


def short_path(site: str) -> str:
    """A file:line relative to the checkout or site-packages, for reading."""
    root = str(Path(__file__).resolve().parents[1]) + os.sep
    if site.startswith(root):
        return site[len(root):]
    marker = f"site-packages{os.sep}"
    return site.split(marker, 1)[1] if marker in site else site


PLUGIN_PACKAGES = ("oauth_hub.providers", "oauth_hub.exporters")


def top_name(module: str) -> str:
    """The name a budget rule speaks of: ``providers`` for any built-in plugin module."""
    if module.startswith(PLUGIN_PACKAGES):
        return "providers"
    return module.split(".")[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="timed starts per command (default 20)")
    parser.add_argument("--budget", type=float, default=1.5, help="max median ratio to `import click`")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="keep the environment's PYTHONDONTWRITEBYTECODE (compile our modules every run)")
    parser.add_argument("--seed", type=int, default=7, help="seed for the round-robin order")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir(mode=0o700)
        with FakeOpenAI() as idp:
            table = {"issuer": idp.issuer, "api_base": idp.api_base, "chatgpt_base": idp.chatgpt_base}
            (home / "config.toml").write_text(tomli_w.dumps({"providers": {"chatgpt": table}}))
            seeded = seed_sign_in("chatgpt", idp.mint_tokens(), home=home)
        # The fake is stopped: a command that tried to refresh or reach the network would fail here.

        env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTH_HUB")}
        env.update(OAUTH_HUB_HOME=str(home), NO_COLOR="1")
        if not args.no_bytecode_cache:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")

        cli = cli_script()
        rows = [
            Row('python -c "pass"', [sys.executable, "-c", "pass"], False),
            Row('python -c "import click"', [sys.executable, "-c", "import click"], False),
            Row("oauth-hub --help", [*cli, "--help"], True),
            Row("oauth-hub status --json", [*cli, "status", "--json"], True),
            Row("oauth-hub token chatgpt", [*cli, "token", "chatgpt"], True),
        ]
        check = subprocess.run([*cli, "token", "chatgpt"], env=env, capture_output=True, text=True)
        if check.returncode != 0 or check.stdout.strip() != seeded.access_token:
            raise SystemExit(f"`oauth-hub token chatgpt` did not print the seeded token: {check.stderr.strip()}")

        for row in rows:  # warm-up: bytecode cache, page cache
            for _ in range(2):
                run_once(row.argv, env)
        order = random.Random(args.seed)
        for _ in range(args.runs):
            batch = list(rows)
            order.shuffle(batch)
            for row in batch:
                row.times.append(run_once(row.argv, env))

        click_row = rows[1]
        pyc = "off (compiled every run)" if args.no_bytecode_cache else "cached"
        print(f"Cold start, {args.runs} runs each, round-robin; Python {sys.version.split()[0]}, "
              f"{os.cpu_count()} CPUs; bytecode {pyc}.")
        print(f"Ratios against `python -c \"import click\"` in this run; budget: median <= {args.budget:.2f}x.")
        print()
        print(f"  {'command':<28} {'best':>8} {'median':>8}   {'best x':>7} {'median x':>9}   budget")
        failed: list[str] = []
        for row in rows:
            ratio_best = row.best / click_row.best
            ratio_median = row.median / click_row.median
            verdict = ""
            if row.budgeted:
                verdict = "PASS" if ratio_median <= args.budget else "FAIL"
                if verdict == "FAIL":
                    failed.append(row.label)
            print(f"  {row.label:<28} {row.best * 1000:6.1f}ms {row.median * 1000:6.1f}ms   "
                  f"{ratio_best:6.2f}x {ratio_median:8.2f}x   {verdict}")

        print()
        print("Imports (python -X importtime, one run each):")
        baseline = import_tree([sys.executable, "-c", "import click"], env, Path(tmp))
        empty = Path(tmp) / "empty.py"
        empty.write_text("")
        harness = import_tree([sys.executable, str(empty)], env, Path(tmp))  # the spy's own imports
        breaches: list[str] = []
        for row in rows[2:]:
            label = row.label.removeprefix("oauth-hub ")
            tree = import_tree(row.argv, env, Path(tmp))
            heavy = sorted({top_name(m) if top_name(m) in HEAVY else m for m in tree
                            if top_name(m) in HEAVY or m in HEAVY})
            print(f"  {row.label}: heavy modules imported: {', '.join(heavy) or 'none'}")
            for module, why in FORBIDDEN.get(label, {}).items():
                hits = [m for m in tree if top_name(m) == module]
                if hits:
                    first = min((tree[m] for m in hits), key=lambda r: r.level)
                    breaches.append(f"{row.label}: {why} ({first.name}, imported by {first.site})")
            # What our code pulls in beyond the baseline (and beyond this harness's own imports):
            # each line is an import statement that could be made lazy, with what it costs.
            ours = ("oauth_hub", "oauth_core")
            foreign = sorted((r for r in tree.values() if r.name not in baseline and r.name not in harness
                              and not r.name.startswith(ours)
                              and (r.parent is None or r.parent.startswith(ours))),
                             key=lambda r: -r.cumulative_us)[:6]
            own = sorted((r for r in tree.values() if r.name.startswith(("oauth_core", *PLUGIN_PACKAGES))
                          and (r.parent is None or r.parent.startswith("oauth_hub"))),
                         key=lambda r: -r.cumulative_us)[:3]
            print("    our modules (cumulative): " + ", ".join(f"{r.name} {r.cumulative_us / 1000:.1f}ms" for r in own))
            print("    imports that `import click` does not make (cumulative, where):")
            for r in foreign:
                print(f"      {r.cumulative_us / 1000:5.1f}ms  {r.name:<22} {r.site}")
        print()
        if breaches:
            print("Import rules broken:")
            for line in breaches:
                print(f"  FAIL {line}")
        else:
            print("Import rules: PASS (fresh token: no requests/jwt/cryptography; listing: no provider modules)")
        if failed:
            print(f"Budget FAILED for: {', '.join(failed)}")
        return 1 if failed or breaches else 0


if __name__ == "__main__":
    raise SystemExit(main())
