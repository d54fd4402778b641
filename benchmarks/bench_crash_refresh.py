"""The crash figure: kill -9 during refreshes, count the sign-ins lost because of the client.

OpenAI rotates refresh tokens and ends the sign-in when a spent one is sent again, so
a refresh that dies after the IdP answered, before the answer is safe on disk, loses
the sign-in. Here a fake IdP rotates the token and then holds its answer back (``HOLD``
seconds, as a slow server does), and each of ``TRIALS`` refreshes (``oauth_core``'s
``get_token`` in a child process) is killed with SIGKILL at a random moment between the
moment it sends the refresh and ``AFTER`` seconds after the answer is due. A fresh child
then tries again: the sign-in was lost if it cannot refresh any more.

Each loss is put down to whoever had the answer when the kill landed:

- the *server's window*: the kill came before the fake had finished sending the answer.
  The IdP has rotated the token, the client never got the new one: no client can help
  that (only an IdP that accepts the previous token for a grace period can);
- the *client's window*: the answer had been sent. The goal is 0 such losses.

The child is instrumented from outside (its functions wrapped in the benchmark's own
driver, the product untouched) to report when the pending answer was in place (the end
of the client's window) and when the token file was written (where the window ended
before answers were kept: the adversarial run lost 2 of 9 kills there). Both are
measured from the moment the fake wrote the answer's last byte, on the same clock;
median and worst are printed, from refreshes left alone in the same run.

    python benchmarks/bench_crash_refresh.py [--trials 50] [--hold 0.2]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import tomli_w

from oauth_core.testing.fake_openai import FakeOpenAI
from oauth_core.testing.seed import seed_sign_in

DRIVER = r"""
import sys, time
from oauth_core import http as http_module, tokens

def emit(event):
    print(event, repr(time.time()), flush=True)

request = http_module.HttpClient.request
def instrumented_request(self, method, url, **kwargs):
    refresh = kwargs.get("what") == "token refresh"
    if refresh:
        emit("request")
    result = request(self, method, url, **kwargs)
    if refresh:
        emit("answer")
    return result
http_module.HttpClient.request = instrumented_request

from oauth_core import store
replace = store.os.replace
class InstrumentedOs:  # the store module's os, with os.replace reporting the pending file in place
    def __getattr__(self, name):
        return getattr(store.os_module, name)
    @staticmethod
    def replace(source, target):
        replace(source, target)
        if str(target).endswith(".pending"):
            emit("in_place")
store.os_module = store.os
store.os = InstrumentedOs()

save = tokens.save_credentials
def instrumented_save(*args, **kwargs):
    path = save(*args, **kwargs)
    emit("record")
    return path
tokens.save_credentials = instrumented_save

tokens.get_token("chatgpt")
emit("done")
"""


def child(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", DRIVER], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def events_of(output: str) -> dict[str, float]:
    found = {}
    for line in output.splitlines():
        name, _, when = line.partition(" ")
        if name in ("request", "answer", "in_place", "record", "done") and name not in found:
            try:
                found[name] = float(when)
            except ValueError:  # a line cut short by the kill
                continue
    return found


def trial(fake: FakeOpenAI, base: Path, n: int, hold: float, after: float, rng: random.Random) -> dict:
    home = base / f"home-{n}"
    home.mkdir(mode=0o700)
    (home / "config.toml").write_text(tomli_w.dumps({"providers": {"chatgpt": {
        "issuer": fake.issuer, "api_base": fake.api_base, "chatgpt_base": fake.chatgpt_base}}}))
    seed_sign_in("chatgpt", fake.mint_tokens(), home=home, expires_at=time.time() - 10)
    env = dict(os.environ, OAUTH_HUB_HOME=str(home))
    before = len(fake.requests_to("/oauth/token"))
    fake.hold_next("/oauth/token", timeout=hold)

    proc = child(env)
    lines: list[str] = []
    request_sent = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("request "):
                request_sent.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if not request_sent.wait(30):
        proc.kill()
        raise RuntimeError(f"the refresh never started: {proc.stderr.read()}")
    time.sleep(rng.uniform(0, hold + after))
    killed_at = time.time()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reader.join(5)
    events = events_of("".join(lines))

    refreshes = fake.requests_to("/oauth/token")[before:]
    answered_at = refreshes[0].answered_at if refreshes else None
    # Wait for the fake to finish with the killed client's request, so the order is settled.
    deadline = time.monotonic() + hold + 2
    while refreshes and refreshes[0].answered_at is None and time.monotonic() < deadline:
        time.sleep(0.01)
        answered_at = refreshes[0].answered_at
    after_answer = answered_at is not None and killed_at >= answered_at

    recovery = subprocess.run([sys.executable, "-c", DRIVER], env=env, capture_output=True, text=True, timeout=60)
    lost = recovery.returncode != 0
    if lost and "sign-in has ended" not in recovery.stderr:
        raise RuntimeError(f"recovery failed for another reason: {recovery.stderr[-500:]}")
    return {"events": events, "killed_at": killed_at, "answered_at": answered_at, "after_answer": after_answer,
            "lost": lost, "recovery": events_of(recovery.stdout)}


def unkilled_window(fake: FakeOpenAI, base: Path, n: int) -> dict[str, float]:
    """One refresh left alone: when its answer arrived, was kept, and made into the token file."""
    home = base / f"calm-{n}"
    home.mkdir(mode=0o700)
    (home / "config.toml").write_text(tomli_w.dumps({"providers": {"chatgpt": {
        "issuer": fake.issuer, "api_base": fake.api_base, "chatgpt_base": fake.chatgpt_base}}}))
    seed_sign_in("chatgpt", fake.mint_tokens(), home=home, expires_at=time.time() - 10)
    before = len(fake.requests_to("/oauth/token"))
    done = subprocess.run([sys.executable, "-c", DRIVER], env=dict(os.environ, OAUTH_HUB_HOME=str(home)),
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    events = events_of(done.stdout)
    (refresh,) = fake.requests_to("/oauth/token")[before:]
    if refresh.answered_at is not None:
        events["sent"] = refresh.answered_at  # the IdP's last byte written: where the client's window starts
    return events


def ms(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"median {statistics.median(values) * 1000:.1f} ms, worst {max(values) * 1000:.1f} ms (n={len(values)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--hold", type=float, default=0.2, help="seconds the fake holds each answer after rotating")
    parser.add_argument("--after", type=float, default=0.1, help="kills land up to this long after the answer")
    parser.add_argument("--calm", type=int, default=20, help="refreshes left alone, to measure the windows")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    results = []
    with FakeOpenAI() as fake, tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        calm = [unkilled_window(fake, base, n) for n in range(args.calm)]
        for n in range(args.trials):
            results.append(trial(fake, base, n, args.hold, args.after, rng))
            print(f"trial {n + 1}/{args.trials}: killed {'after' if results[-1]['after_answer'] else 'before'} "
                  f"the answer was sent; {'LOST' if results[-1]['lost'] else 'kept'}", file=sys.stderr)

    server_window = [r for r in results if not r["after_answer"]]
    client_window = [r for r in results if r["after_answer"]]
    lost_client = [r for r in client_window if r["lost"]]
    lost_server = [r for r in server_window if r["lost"]]
    finished_from_pending = [r for r in results if not r["lost"] and "in_place" in r["events"]
                             and "record" not in r["events"]]
    old_window = [e["record"] - e["sent"] for e in calm if "record" in e and "sent" in e]
    from_sent = [e["in_place"] - e["sent"] for e in calm if "in_place" in e and "sent" in e]

    print(f"{args.trials} refreshes killed with SIGKILL at random moments (fake IdP holds each answer "
          f"{args.hold:g} s after rotating; kills from the request to {args.after:g} s after the answer).")
    print(f"  lost because of the client (killed after the answer was sent): {len(lost_client)} of "
          f"{len(client_window)} such trials; {len(lost_client)} of {len(results)} in all (goal 0)")
    print(f"  lost in the server's window (killed before the answer was sent): {len(lost_server)} of "
          f"{len(server_window)} such trials (unavoidable for any client)")
    print(f"  killed after the answer was kept, finished by the next run from the pending file: "
          f"{len(finished_from_pending)}")
    print(f"  the client's window: the IdP's last byte sent -> pending file in place (safe from kill -9): "
          f"{ms(from_sent)}")
    print(f"  where the window used to end, the IdP's last byte sent -> token file written: {ms(old_window)}")
    return 1 if lost_client else 0


if __name__ == "__main__":
    sys.exit(main())
