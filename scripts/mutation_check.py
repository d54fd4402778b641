"""A rerunnable mutation check of the security-critical modules.

Each mutant below is one small, deliberate bug in ``loopback``, ``idtoken``, ``pkce``,
``tokens``, ``store``, ``serve`` or the ChatGPT provider: the kind of slip a refactor
makes (a check dropped, a constant changed, a comparison loosened). The script applies
one at a time to the source, runs the non-browser tests that cover that module, and
records whether the suite noticed (a test failed: *killed*) or not (*survived*). The
source is restored after every mutant, also on Ctrl+C; a crash mid-run is repaired by
the next run from ``.tmp/mutation-backup``.

A survivor either shows a missing test, or is *equivalent*: a change no test can see
because the program's observable behaviour does not change. Equivalent mutants are
listed in ``EQUIVALENT`` with the reason, and the report says which survivors are not
explained. Goal: at least 95% killed, every survivor explained.

Run from the repository root, one session at a time (the tests use fixed ports; on a
shared machine run it in a network namespace of its own, e.g. ``unshare -rn``)::

    python scripts/mutation_check.py                # all mutants
    python scripts/mutation_check.py -k serve       # mutants whose id contains "serve"
    python scripts/mutation_check.py --list         # list them, run nothing
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BACKUP = ROOT / ".tmp" / "mutation-backup"


@dataclass(frozen=True)
class Mutant:
    id: str
    path: str
    old: str
    new: str
    why: str  # the bug it stands for


# The tests that cover each module, the most pointed first (``-x`` stops at the first failure).
TESTS = {
    "oauth_core/pkce.py": ["tests/test_security.py::test_two_logins_never_share_a_state_a_verifier_or_a_nonce",
                           "tests/test_chatgpt_e2e.py", "tests/test_security.py", "tests/test_login_remote.py"],
    "oauth_core/idtoken.py": ["tests/test_idtoken.py", "tests/test_faults.py", "tests/test_oidc_provider.py"],
    "oauth_core/tokens.py": ["tests/test_faults.py", "tests/test_tokens.py", "tests/test_resilience.py",
                             "tests/test_config_store.py", "tests/test_properties.py"],
    "oauth_core/store.py": ["tests/test_faults.py", "tests/test_config_store.py", "tests/test_tokens.py",
                            "tests/test_security.py",
                            "tests/test_chatgpt_e2e.py::test_a_loose_corrupt_token_file_is_kept_aside_private"],
    "oauth_core/loopback.py": ["tests/test_loopback.py", "tests/test_security.py", "tests/test_login_remote.py",
                               "tests/test_properties.py"],
    "oauth_core/serve.py": ["tests/test_serve_pinned.py", "tests/test_serve.py"],
    "oauth_core/gateway/server.py": ["tests/test_serve_pinned.py", "tests/test_serve.py",
                                     "tests/test_gateway_server.py"],
    "providers/chatgpt/__init__.py": ["tests/test_faults.py", "tests/test_chatgpt_e2e.py", "tests/test_tokens.py",
                                      "tests/test_idtoken.py", "tests/test_login_remote.py", "tests/test_serve.py",
                                      "tests/test_resilience.py"],
}

M = Mutant
GATEWAY = "oauth_core/gateway/server.py"
MUTANTS = [
    # -- pkce ------------------------------------------------------------------------------------
    M("pkce-constant-state", "oauth_core/pkce.py", "b64url(secrets.token_bytes(32))", 'b64url(b"\\0" * 32)',
      "every login sends the same state"),
    M("pkce-constant-verifier", "oauth_core/pkce.py", "b64url(secrets.token_bytes(64))", 'b64url(b"\\0" * 64)',
      "every login uses the same PKCE verifier"),
    M("pkce-short-state", "oauth_core/pkce.py", "b64url(secrets.token_bytes(32))", "b64url(secrets.token_bytes(8))",
      "a guessable 8-byte state"),
    M("pkce-plain-challenge", "oauth_core/pkce.py", "challenge=challenge_for(verifier)", "challenge=verifier",
      "the verifier itself sent as challenge (plain)"),
    M("pkce-sha1", "oauth_core/pkce.py", "hashlib.sha256(", "hashlib.sha1(", "a wrong digest"),
    M("pkce-padding", "oauth_core/pkce.py", '.rstrip(b"=")', "", "base64 padding kept"),
    M("pkce-std-alphabet", "oauth_core/pkce.py", "base64.urlsafe_b64encode", "base64.standard_b64encode",
      "+ and / in the verifier"),
    # -- idtoken ---------------------------------------------------------------------------------
    M("idtoken-exp-optional", "oauth_core/idtoken.py", '"require": ["exp", "iss", "aud"]', '"require": ["iss", "aud"]',
      "an ID token without exp is good forever"),
    M("idtoken-no-issuer", "oauth_core/idtoken.py", "audience=audience, issuer=issuer,", "audience=audience,",
      "any issuer accepted"),
    M("idtoken-huge-leeway", "oauth_core/idtoken.py", "leeway=leeway,", "leeway=10**9,", "expired tokens accepted"),
    M("idtoken-no-nonce", "oauth_core/idtoken.py", "if nonce is not None and claims.get", "if False and claims.get",
      "a replayed ID token from another login accepted"),
    M("idtoken-any-kid", "oauth_core/idtoken.py", "(kid is not None and jwk.get(\"kid\") != kid)", "False",
      "the kid is not matched"),
    M("idtoken-hs-accepted", "oauth_core/idtoken.py", 'ALGORITHMS: tuple[str, ...] = (\n    "RS256",',
      'ALGORITHMS: tuple[str, ...] = (\n    "HS256", "RS256",', "an HMAC-signed token checked against a public key"),
    M("idtoken-alg-unchecked", "oauth_core/idtoken.py", "    if alg not in ALGORITHMS:\n        raise IdTokenError(",
      "    if False:\n        raise IdTokenError(", "a token naming an algorithm outside the list is tried"),
    M("idtoken-enc-keys", "oauth_core/idtoken.py", 'if jwk.get("use", "sig") != "sig" or alg not in',
      "if alg not in", "an encryption key accepted as a signing key"),
    M("idtoken-no-age-leeway", "oauth_core/idtoken.py",
      "leeway = LEEWAY + max(0.0, time.time() - received_at) if received_at is not None else LEEWAY",
      "leeway = LEEWAY", "a kept refresh answer refused for having aged since it arrived"),
    M("idtoken-bad-sig-passes", "oauth_core/idtoken.py", "        except jwt.InvalidSignatureError as exc:\n"
      "            last_error = exc", "        except jwt.InvalidSignatureError as exc:\n"
      "            last_error = exc\n            claims = jwt.decode(id_token, options={'verify_signature': False})\n"
      "            break", "a bad signature accepted"),
    # -- tokens ----------------------------------------------------------------------------------
    M("tokens-no-margin", "oauth_core/tokens.py", "REFRESH_MARGIN = 5 * 60", "REFRESH_MARGIN = 0",
      "refresh only after expiry"),
    M("tokens-no-max-age", "oauth_core/tokens.py", "due = min(due, last + MAX_AGE)", "due = due",
      "the 8-day rule dropped"),
    M("tokens-max-age-80", "oauth_core/tokens.py", "MAX_AGE = 8 * 24 * 3600", "MAX_AGE = 80 * 24 * 3600",
      "the 8-day rule stretched"),
    M("tokens-no-halfway", "oauth_core/tokens.py",
      "margin = min(margin, max(credentials.expires_at - last, 0) / 2)", "margin = margin",
      "short-lived tokens refreshed at every use"),
    M("tokens-no-token-not-due", "oauth_core/tokens.py", 'return float("-inf")', 'return float("inf")',
      "a record without an access token is never refreshed"),
    M("tokens-cache-ignores-stat", "oauth_core/tokens.py", "if cached is not None and cached[0] == signature:",
      "if cached is not None:", "another process's refresh not noticed"),
    M("tokens-never-due", "oauth_core/tokens.py", "    if time.time() >= due:\n        credentials = _refresh_or_keep",
      "    if False:\n        credentials = _refresh_or_keep", "get_token never refreshes"),
    M("tokens-no-reuse", "oauth_core/tokens.py",
      "someone_else_refreshed = stale_token is not None and current.access_token != stale_token",
      "someone_else_refreshed = False", "a refresh made by another process is made again"),
    M("tokens-force-ignored", "oauth_core/tokens.py", "if not force and (someone_else_refreshed",
      "if (someone_else_refreshed", "`oauth-hub refresh` does nothing on a fresh token"),
    M("tokens-no-jwks-first", "oauth_core/tokens.py",
      "    loaded.signing_keys(http)  # before the refresh token is spent", "    pass  # ",
      "the JWKS fetched after the refresh token is spent"),
    M("tokens-no-answer-check", "oauth_core/tokens.py", "            _check_answer(loaded, answer)\n",
      "            pass\n",
      "a 200 without a usable token is stored"),
    M("tokens-no-pending", "oauth_core/tokens.py",
      "            _keep_pending(store, record, answer, received_at, pending_space)\n", "            pass\n",
      "an answer a hook fetched itself is not on disk before the ID token is checked"),
    M("tokens-no-keeper", "oauth_core/tokens.py", "            http.keep_answer = keeper\n",
      "            http.keep_answer = previous\n", "the answer is kept only after the hook returned it"),
    M("tokens-garbage-kept", "oauth_core/tokens.py", "        except BadAnswer:\n            keeper.discard()\n",
      "        except BadAnswer:\n", "an unusable answer left on disk"),
    M("tokens-unusable-pending-blocks", "oauth_core/tokens.py",
      "        remove_file(path)\n        notify(f\"Removed {path}: a refresh answer that holds no usable token.\")\n"
      "        return current", "        raise CorruptFileError(f\"{path} holds no usable answer.\")",
      "a kept answer without a usable token blocks every refresh"),
    M("tokens-pending-ignored", "oauth_core/tokens.py",
      "        if os.path.lexists(store.pending_path(record)):\n            # An earlier refresh",
      "        if False:\n            # An earlier refresh",
      "a kept answer is not finished; the spent token is sent again"),
    M("tokens-no-reservation", "oauth_core/tokens.py",
      "with _reserved(store, record, limit) as (pending_space, record_space):",
      "with contextlib.nullcontext((None, None)) as (pending_space, record_space):",
      "no disk space set aside before the refresh token is spent"),
    M("tokens-stale-reservations-kept", "oauth_core/tokens.py",
      "        discard_reservations(store, record)\n        if os.path.lexists(store.pending_path(record)):\n"
      "            # An earlier", "        if os.path.lexists(store.pending_path(record)):\n            # An earlier",
      "a killed refresher's space is never given back"),
    M("tokens-lock-busy-fatal", "oauth_core/tokens.py",
      "(NetworkError, BadAnswer, LockBusy, HomeError, RefreshPending)", "(NetworkError, BadAnswer, HomeError, "
      "RefreshPending)", "a busy lock hides a still-valid token"),
    M("tokens-home-error-fatal", "oauth_core/tokens.py",
      "(NetworkError, BadAnswer, LockBusy, HomeError, RefreshPending)", "(NetworkError, BadAnswer, LockBusy, "
      "RefreshPending)", "a read-only or full home hides a still-valid token"),
    M("tokens-4xx-kept", "oauth_core/tokens.py", "return isinstance(exc, IdPError) and (exc.status or 0) >= 500",
      "return isinstance(exc, IdPError) and (exc.status or 0) >= 400", "a 4xx refusal hidden behind the old token"),
    M("tokens-expired-kept", "oauth_core/tokens.py",
      "if not credentials.access_token or left is None or left <= 0:\n            raise",
      "if not credentials.access_token:\n            raise", "an expired token handed out after a failed refresh"),
    M("tokens-no-tighten", "oauth_core/tokens.py", "    tighten_file(path)\n    data = read_json(path)",
      "    data = read_json(path)", "a loose token file used as it is"),
    M("tokens-received-at-ignored", "oauth_core/tokens.py",
      "return _finish(loaded, store, current, answer, float(received_at), http, space)",
      "return _finish(loaded, store, current, answer, time.time(), http, space)",
      "a kept answer's expiry counted from when it was finished, not received"),
    M("tokens-lock-timeout-zero", "oauth_core/tokens.py", "LOCK_TIMEOUT = 30.0", "LOCK_TIMEOUT = 0.0",
      "callers give up at once on a lock another refresher holds"),
    # -- store -----------------------------------------------------------------------------------
    M("store-follows-links", "oauth_core/store.py", '_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)', "_NOFOLLOW = 0",
      "a symlink in the home is followed"),
    M("store-group-bits-ok", "oauth_core/store.py", "        if mode & 0o077:\n            os.fchmod(fd, 0o600)",
      "        if mode & 0o007:\n            os.fchmod(fd, 0o600)", "a 0640 token file is left group-readable"),
    M("store-chmod-640", "oauth_core/store.py", "os.fchmod(fd, 0o600)", "os.fchmod(fd, 0o640)",
      "tightened to a group-readable mode"),
    M("store-home-group-ok", "oauth_core/store.py", "        if mode & 0o077:\n            os.chmod(home, 0o700)",
      "        if mode & 0o007:\n            os.chmod(home, 0o700)", "a 0750 home is left as it is"),
    M("store-dirs-read", "oauth_core/store.py", "    if not stat.S_ISREG(st.st_mode):\n        os.close(fd)",
      "    if False:\n        os.close(fd)", "a directory at a file's path is read and chmodded"),
    M("store-no-slot-check-dir", "oauth_core/store.py",
      "    if stat.S_ISDIR(st.st_mode):\n        raise HomeError(f\"Cannot use {path}: it is a directory.",
      "    if False:\n        raise HomeError(f\"Cannot use {path}: it is a directory.",
      "login spends the code, then fails on a directory"),
    M("store-no-slot-check-link", "oauth_core/store.py", "    if stat.S_ISLNK(st.st_mode):", "    if False:",
      "login spends the code, then writes over a link"),
    M("store-no-allocate", "oauth_core/store.py", "            _allocate(self._fd, size)\n", "",
      "a reservation that reserves nothing"),
    M("store-no-truncate", "oauth_core/store.py", "            os.ftruncate(fd, len(data))\n", "",
      "a filled reservation keeps its zero tail"),
    M("store-no-fsync", "oauth_core/store.py", "            os.fsync(handle.fileno())\n", "",
      "the file's data not forced to disk before the rename"),
    M("store-no-dir-fsync", "oauth_core/store.py", "    _fsync_dir(directory)\n\n\ndef _fsync_dir",
      "\n\ndef _fsync_dir", "the rename not forced to disk"),
    M("store-thread-lock-forever", "oauth_core/store.py", "if not thread_lock.acquire(timeout=max(timeout, 0)):",
      "if not thread_lock.acquire():", "a thread waits forever for another thread's refresh"),
    M("store-no-lock-slot-check", "oauth_core/store.py",
      "        check_file_slot(path)  # filelock opens with O_NOFOLLOW; this names the problem\n", "",
      "a link at the lock path reported by filelock alone"),
    M("store-enospc-advice", "oauth_core/store.py", "if code in (errno.ENOSPC, ", "if code in (-2, ",
      "a full disk reported without what to do"),
    M("store-erofs-advice", "oauth_core/store.py", "    if code == errno.EROFS:", "    if code == -3:",
      "a read-only home reported without what to do"),
    M("store-recursion-crash", "oauth_core/store.py",
      "    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:",
      "    except (UnicodeDecodeError, json.JSONDecodeError) as exc:", "a deeply nested file crashes the CLI"),
    M("store-set-aside-loose", "oauth_core/store.py", "        raise home_error(exc, path, \"set aside\") from None\n"
      "    tighten_file(target)", "        raise home_error(exc, path, \"set aside\") from None",
      "a corrupt token file kept aside with its loose mode"),
    # -- loopback --------------------------------------------------------------------------------
    M("loopback-any-address", "oauth_core/loopback.py", 'BIND_ADDRESS = "127.0.0.1"', 'BIND_ADDRESS = "0.0.0.0"',
      "the callback listens on every interface"),
    M("loopback-no-state-check", "oauth_core/loopback.py", 'if params.get("state") != self.state:', "if False:",
      "a forged callback completes the login"),
    M("loopback-two-callbacks", "oauth_core/loopback.py",
      "            if self._done.is_set():\n                return Verdict(409",
      "            if False:\n                return Verdict(409", "a second callback overwrites the first"),
    M("loopback-cancel-overwrites", "oauth_core/loopback.py", "        with self._lock:\n            if not self._done."
      "is_set():\n                self._outcome.error = LoginCancelled(reason)", "        with self._lock:\n"
      "            if True:\n                self._outcome.error = LoginCancelled(reason)",
      "a /cancel after a valid callback overwrites it"),
    M("loopback-any-host", "oauth_core/loopback.py", 'return host in (f"127.0.0.1:{port}", f"localhost:{port}")',
      "return True", "DNS rebinding: any Host accepted"),
    M("loopback-web-cancel", "oauth_core/loopback.py",
      '        return site != "none" or bool(self.headers.get("Origin"))', "        return False and bool(self.headers."
      'get("Origin"))', "a web page can cancel the login"),
    M("loopback-no-deadline", "oauth_core/loopback.py",
      "        if left <= 0:\n            raise TimeoutError", "        if False:\n            raise TimeoutError",
      "a trickling client holds a connection for ever"),
    M("loopback-no-escape", "oauth_core/loopback.py",
      "return _PAGE.format(title=html.escape(title), message=html.escape(message))",
      "return _PAGE.format(title=title, message=message)", "error pages echo markup"),
    M("loopback-code-optional", "oauth_core/loopback.py",
      "            if not code:\n                return Verdict(400",
      "            if False:\n                return Verdict(400", "a callback without a code ends the login"),
    M("loopback-cancel-before-answer", "oauth_core/loopback.py",
      '            self._send(200, _page("Login cancelled", "The waiting login was stopped."))\n'
      "            with contextlib.suppress(OSError):\n                self.wfile.flush()\n            flow.cancel(",
      "            flow.cancel(", "a cancelled login can exit before answering, and the newer one moves to 1457"),
    M("loopback-never-cancels", "oauth_core/loopback.py", "if httpd is None and self.cancel_stale and "
      "_ask_to_cancel(port):", "if False:", "a stale login is never asked to give way"),
    M("loopback-error-not-ending", "oauth_core/loopback.py",
      "                self._outcome.error = LoginError(\n", "                LoginError(\n",
      "an error callback is not reported"),
    M("loopback-small-backlog", "oauth_core/loopback.py", "request_queue_size = socket.SOMAXCONN",
      "request_queue_size = 5", "junk connections delay the real callback"),
    M("loopback-no-store-header", "oauth_core/loopback.py",
      '        self.send_header("Content-Length", str(len(data)))\n'
      '        self.send_header("Cache-Control", "no-store")\n',
      '        self.send_header("Content-Length", str(len(data)))\n', "the page holding the code may be cached"),
    M("loopback-fallback-silent", "oauth_core/loopback.py", "                if port != self.ports[0]:\n"
      "                    self.notices.append(", "                if False:\n                    self.notices.append(",
      "the move to the fallback port goes unsaid"),
    # -- serve (the local key in serve.py, the server in gateway/server.py) -------------------------
    M("serve-key-prefix", GATEWAY, 'hmac.compare_digest(p.encode("utf-8"), self.key)',
      'self.key.startswith(p.encode("utf-8"))', "a prefix of the local key accepted"),
    M("serve-key-suffix", GATEWAY, 'hmac.compare_digest(p.encode("utf-8"), self.key)',
      'p.encode("utf-8").startswith(self.key)', "the local key plus anything accepted"),
    M("serve-short-stable-key", "oauth_core/serve.py", "    if len(key) >= 32:\n        return key",
      "    if key:\n        return key", "a short hand-edited key accepted"),
    M("serve-cookie-forwarded", GATEWAY, '"accept-encoding", "cookie",\n', '"accept-encoding",\n',
      "the client's cookies sent upstream"),
    M("serve-connection-listed", GATEWAY, "            if lower in _DROP_REQUEST or lower in listed:",
      "            if lower in _DROP_REQUEST:", "Connection-listed headers sent upstream"),
    M("serve-hop-by-hop", GATEWAY, '"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",',
      '"connection", "keep-alive", "proxy-authenticate",', "Proxy-Authorization sent upstream"),
    M("serve-no-body-cap", GATEWAY, "app = web.Application(client_max_size=MAX_BODY,",
      "app = web.Application(client_max_size=1 << 40,", "request bodies of any size"),
    M("serve-encoded-dots", GATEWAY, 'if any(part in (".", "..") for part in unquote(path).replace(',
      'if any(part in (".", "..") for part in path.replace(', "%2e%2e segments forwarded"),
    M("serve-backslash-dots", GATEWAY, 'unquote(path).replace("\\\\", "/").split("/")):',
      'unquote(path).split("/")):', "..\\ segments forwarded"),
    M("serve-any-host", GATEWAY, "        if host not in self.allowed_hosts:\n", "        if False:\n",
      "DNS rebinding: any Host accepted"),
    M("serve-any-address", "oauth_core/serve.py", "    if host not in LOOPBACK:\n        raise ServeError",
      "    if False:\n        raise ServeError", "serve binds a public address"),
    M("serve-x-api-key-forwarded", GATEWAY, '"authorization", "x-api-key", "accept-encoding"',
      '"authorization", "accept-encoding"', "the local key sent upstream as x-api-key"),
    M("serve-no-401-retry", GATEWAY, "if answer.status == 401 and attempt == 1:",
      "if answer.status == 999 and attempt == 1:", "a revoked token is not refreshed"),
    M("serve-set-cookie-relayed", GATEWAY, '"content-encoding", "set-cookie", "server"',
      '"content-encoding", "server"', "upstream cookies handed to the client"),
    M("serve-cookie-jar", GATEWAY, "auto_decompress=True, cookie_jar=DummyCookieJar(),", "auto_decompress=True,",
      "upstream cookies kept and sent on later requests"),
    M("serve-random-key", "oauth_core/serve.py", "return secrets.token_urlsafe(32)",
      'return "0123456789abcdef0123456789abcdef0123456789a"', "the same key every run"),
    # -- the ChatGPT provider ----------------------------------------------------------------------
    M("chatgpt-plain-pkce", "providers/chatgpt/__init__.py", '"code_challenge_method": "S256"',
      '"code_challenge_method": "plain"', "PKCE plain"),
    M("chatgpt-fixed-state", "providers/chatgpt/__init__.py", '        "state": state,\n', '        "state": "s",\n',
      "the state is not this login's"),
    M("chatgpt-401-not-final", "providers/chatgpt/__init__.py", "if exc.code in DEAD_REFRESH_CODES or exc.status == "
      "401:", "if exc.code in DEAD_REFRESH_CODES:", "a plain 401 refresh refusal not seen as the end"),
    M("chatgpt-reused-not-final", "providers/chatgpt/__init__.py", '    "refresh_token_reused": ', '    "x_reused": ',
      "a reused refresh token not seen as the end"),
    M("chatgpt-refresh-retried", "providers/chatgpt/__init__.py", "            idempotent=False,\n", "",
      "a refresh resent after a 500 (the token may already be spent)"),
    M("chatgpt-no-retries", "providers/chatgpt/__init__.py", "            retries=3,\n", "",
      "a 503 from a gateway ends the refresh"),
    M("chatgpt-wrong-token-sent", "providers/chatgpt/__init__.py",
      '"refresh_token": credentials.refresh_token},', '"refresh_token": credentials.access_token},',
      "the access token sent as refresh token"),
    M("chatgpt-key-without-project", "providers/chatgpt/__init__.py",
      'if not (account.get("organization_id") and account.get("project_id")):',
      'if not (account.get("organization_id") or account.get("project_id")):',
      "an API key asked for without a project"),
    M("chatgpt-identity-from-access-token", "providers/chatgpt/__init__.py",
      "    id_claims = safe_payload(credentials.id_token)\n    auth = _auth_claims(credentials.id_token)",
      "    id_claims = safe_payload(credentials.access_token)\n    auth = _auth_claims(credentials.access_token)",
      "identity taken from the unverified access token"),
    M("chatgpt-no-jwks", "providers/chatgpt/__init__.py", '"jwks_uri": "{issuer}/.well-known/jwks.json",',
      '"jwks_uri": "",', "ID tokens not verified"),
    M("chatgpt-no-account-header", "providers/chatgpt/__init__.py",
      '        headers["ChatGPT-Account-Id"] = credentials.account["account_id"]\n', "",
      "subscription requests without the account header"),
    M("chatgpt-revokes-access-token", "providers/chatgpt/__init__.py",
      'json={"token": credentials.refresh_token, "token_type_hint": "refresh_token",',
      'json={"token": credentials.access_token, "token_type_hint": "refresh_token",',
      "logout revokes the wrong token"),
    M("chatgpt-wrong-port", "providers/chatgpt/__init__.py", '"port": 1455,', '"port": 1456,',
      "a redirect port OpenAI does not accept"),
    M("chatgpt-device-403-final", "providers/chatgpt/__init__.py", "if exc.status in (403, 404):",
      "if exc.status in (404,):", "device login gives up while the code is pending"),
    M("chatgpt-api-base-swapped", "providers/chatgpt/__init__.py",
      'return str(settings["api_base"] if credentials.api_key else settings["chatgpt_base"])',
      'return str(settings["chatgpt_base"] if credentials.api_key else settings["api_base"])',
      "subscription requests sent to the platform API"),
    M("chatgpt-key-missing-ok", "providers/chatgpt/__init__.py", "    if not isinstance(key, str) or not key:\n"
      "        raise OAuthHubError", "    if False:\n        raise OAuthHubError",
      "an API-key answer without a key stored as a key"),
]

# Survivors that no test can kill, because nothing observable changes. Each says why.
EQUIVALENT = {
    "tokens-no-keeper": "without the keeper the answer is still put on disk before the ID token is checked, by "
                        "the engine once the hook returns; only the window a kill -9 has to hit grows (a few ms), "
                        "which benchmarks/bench_crash_refresh.py measures and no test can assert without timing.",
    "store-no-fsync": "fsync only matters if the machine loses power between write and rename; no test can "
                      "cut the power, and the kill -9 tests show the page cache is enough against crashes of the "
                      "process itself.",
    "store-no-dir-fsync": "the same, for the directory entry of the rename.",
    "store-no-lock-slot-check": "filelock itself opens the lock with O_NOFOLLOW, and the ELOOP/EISDIR it then "
                                "raises is turned into the same one-line HomeError; the check only says it first.",
    "loopback-no-deadline": "without the explicit check, the next line's settimeout() gets a negative (or zero) "
                            "timeout once the deadline has passed, and raises (or reads non-blocking), so the "
                            "trickling connection is cut off at the same moment anyway; only the exception "
                            "type differs, which nothing outside the handler sees.",
    "loopback-small-backlog": "a backlog of 5 delays the real callback under a flood of junk connections (the "
                              "kernel drops SYNs, the browser retransmits after ~1 s) but never stops it: a speed "
                              "property, measured in benchmarks/bench_loopback_junk.py, not asserted by a test.",
}


def _run_tests(files: list[str], timeout: float) -> tuple[str, float]:
    """Run the covering tests one entry after the other (pytest would reorder a node id given
    before its own file), stopping at the first failure."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    started = time.monotonic()
    for entry in files:
        left = timeout - (time.monotonic() - started)
        try:
            done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m",
                                   "not browser", entry], cwd=ROOT, env=env, capture_output=True, text=True,
                                  timeout=max(left, 1))
        except subprocess.TimeoutExpired:
            return "killed (timeout)", time.monotonic() - started
        if done.returncode == 1:
            return f"killed by {entry}", time.monotonic() - started
        if done.returncode != 0:
            return f"error (pytest exit {done.returncode}): {done.stdout[-300:]}", time.monotonic() - started
    return "survived", time.monotonic() - started


def _drop_bytecode(path: Path) -> None:
    cache = path.parent / "__pycache__"
    for pyc in cache.glob(f"{path.stem}.*.pyc"):
        pyc.unlink(missing_ok=True)


def _restore_leftovers() -> None:
    """Put back sources a killed earlier run left mutated."""
    if not BACKUP.exists():
        return
    for saved in BACKUP.rglob("*.py"):
        target = ROOT / saved.relative_to(BACKUP)
        shutil.copyfile(saved, target)
        _drop_bytecode(target)
        print(f"restored {target.relative_to(ROOT)} from an interrupted run")
    shutil.rmtree(BACKUP)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", default="", help="only mutants whose id contains this")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per mutant's test run")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()

    _restore_leftovers()
    chosen = [m for m in MUTANTS if args.k in m.id]
    problems = []
    for m in chosen:
        count = (ROOT / m.path).read_text().count(m.old)
        if count != 1:
            problems.append(f"{m.id}: its text occurs {count} times in {m.path} (the source changed: update it)")
    if len({m.id for m in MUTANTS}) != len(MUTANTS):
        problems.append("mutant ids are not unique")
    if problems:
        print("\n".join(problems))
        return 2
    if args.list:
        for m in chosen:
            print(f"{m.id:40} {m.path:32} {m.why}")
        return 0

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    results = []
    for n, m in enumerate(chosen, 1):
        path = ROOT / m.path
        original = path.read_text()
        saved = BACKUP / m.path
        saved.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, saved)
        try:
            path.write_text(original.replace(m.old, m.new, 1))
            _drop_bytecode(path)
            outcome, elapsed = _run_tests(TESTS[m.path], args.timeout)
        finally:
            path.write_text(original)
            _drop_bytecode(path)
            shutil.rmtree(BACKUP, ignore_errors=True)
        results.append({"id": m.id, "path": m.path, "why": m.why, "outcome": outcome, "seconds": round(elapsed)})
        print(f"[{n}/{len(chosen)}] {m.id:40} {outcome} ({elapsed:.0f} s)", flush=True)

    killed = [r for r in results if r["outcome"].startswith("killed")]
    survived = [r for r in results if r["outcome"] == "survived"]
    errors = [r for r in results if r["outcome"].startswith("error")]
    explained = [r for r in survived if r["id"] in EQUIVALENT]
    unexplained = [r for r in survived if r["id"] not in EQUIVALENT]
    total = len(results)
    print()
    print(f"{len(killed)} of {total} mutants killed ({100 * len(killed) / max(total, 1):.1f}%); "
          f"{len(survived)} survived, {len(explained)} of them equivalent; {len(errors)} errors.")
    scored = total - len(explained)  # an equivalent mutant is not a bug, so no test can kill it
    print(f"Mutation score without the equivalent ones: {len(killed)} of {scored} "
          f"({100 * len(killed) / max(scored, 1):.1f}%).")
    for r in explained:
        print(f"  equivalent  {r['id']}: {EQUIVALENT[r['id']]}")
    for r in unexplained:
        print(f"  NOT KILLED  {r['id']} ({r['path']}): {r['why']}")
    for r in errors:
        print(f"  ERROR       {r['id']}: {r['outcome']}")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "equivalent": EQUIVALENT}, indent=2) + "\n")
    ok = total and not unexplained and not errors and len(killed) / total >= 0.95
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
