#!/usr/bin/env bash
# Installs what the `browser` tests need beyond the Python packages:
#   - Debian's chromium (/usr/bin/chromium), driven by Playwright's Python package
#     (pip install -e '.[test]'). Never `playwright install`: its browser downloads are
#     not used, and are blocked on CI machines.
#   - the npm packages of tests/oidc_server (panva's oidc-provider) and of tests/tools/opencode
#     (opencode, run by tests/test_tools.py through `oauth-hub serve`), each from its lockfile.
# Idempotent: what is already there is left alone. Runs apt-get as root, or through sudo.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'install-test-deps: %s\n' "$*"; }

chromium=/usr/bin/chromium
if [ -x "$chromium" ]; then
  say "chromium already installed: $("$chromium" --version 2>/dev/null || echo "$chromium")"
else
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    say "chromium is missing and this is not root and there is no sudo: run as root: apt-get install -y chromium" >&2
    exit 1
  fi
  say "installing chromium with apt-get (Debian's package)"
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" apt-get install -y -qq chromium >/dev/null
  say "installed $("$chromium" --version 2>/dev/null || echo "$chromium")"
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  say "node and npm are needed for tests/oidc_server (Node.js 20 or newer)" >&2
  exit 1
fi
# Up to date when every package the lockfile names is installed at its locked version
# (optional ones, such as another platform's binary, may be missing).
installed_matches_lock() {
  node -e '
    const fs = require("fs"), path = require("path");
    const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8"));
    for (const [where, meta] of Object.entries(lock.packages || {})) {
      if (!where) continue;
      const file = path.join(where, "package.json");
      if (!fs.existsSync(file)) { if (meta.optional) continue; process.exit(1); }
      if (JSON.parse(fs.readFileSync(file, "utf8")).version !== meta.version) process.exit(1);
    }
  ' 2>/dev/null
}
npm_packages() {
  local dir=$1
  if [ ! -f "$dir/package-lock.json" ]; then
    say "npm install in $dir (no lockfile yet)"
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
  elif (cd "$dir" && installed_matches_lock); then
    say "npm packages in $dir already match its lockfile"
  else
    say "npm ci in $dir (node $(node --version), npm $(npm --version))"
    # `npm ci` refuses a lockfile whose optional entries the registry cannot resolve (a
    # registry that serves only this platform's opencode binary). `npm install` installs
    # the same locked versions and skips the missing optional packages.
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error 2>/dev/null) || {
      say "npm ci refused the lockfile in $dir; npm install of the locked versions instead"
      (cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
    }
  fi
}
npm_packages tests/oidc_server
say "oidc-provider $(node -p "require('./tests/oidc_server/node_modules/oidc-provider/package.json').version")"
npm_packages tests/tools/opencode
say "opencode $(tests/tools/opencode/node_modules/.bin/opencode --version)"
say "done; run the browser tests with: python -m pytest -m browser"
