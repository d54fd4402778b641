"""Does `oauth-hub serve` hold up, and was asyncio (aiohttp) the right stack? Figures of issue 12, in one run.

Run from a checkout with the package and test extra installed:

    python benchmarks/bench_gateway.py [--requests 300] [--quick]

Three ways to reach the same fake upstreams (``oauth_core.testing``), measured side by side:

- **direct**: the client talks to the fake with the real credentials (the baseline);
- **gateway**: through ``oauth-hub serve`` (aiohttp, one event loop), started as people
  start it, in a process of its own;
- **threads**: through a thread-per-connection pass-through proxy on the standard
  library (``ThreadingHTTPServer`` + one ``requests`` session), the stack ``serve`` had,
  also in its own process, with its listen backlog already raised to ``SOMAXCONN`` so the
  comparison is about the stack and not that one setting.

Figures (budget in brackets):

1. a burst of 64 new connections at once: wall time, as a multiple of direct [≤ 10×];
2. 200 concurrent requests, 150 plain + 50 streamed: how many succeed [all];
3. per-request time at concurrency 1, pass-through (``GET /chatgpt/models``): median,
   as a multiple of direct [≤ 3×];
4. translation: the median cost of translating a request and its streamed answer
   (OpenAI Chat ↔ Responses, in process) and the end-to-end difference between a
   same-dialect and a translated call [≤ 1 ms at the median];
5. 300 half-open connections (a request head that never ends): threads held, and how
   long until the server has closed them all [closed by the header deadline, ≤ 10 s;
   not one thread each];
6. a client that hangs up mid-stream while the upstream is silent: time until the
   upstream sees its request closed [≤ 1 s].

Exits 1 when a budget fails. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import tomli_w

from oauth_core.accounts import load_credentials
from oauth_core.gateway import neutral
from oauth_core.gateway.dialects import chat, responses
from oauth_core.http import HttpClient
from oauth_core.login import build_model_entries, write_model_entries
from oauth_core.provider import Provider
from oauth_core.store import Store
from oauth_core.testing.fake_anthropic import CLAUDE_CODE_SYSTEM_PREFIX, FakeAnthropic
from oauth_core.testing.fake_openai import FakeOpenAI
from oauth_core.testing.seed import seed_sign_in

KEY = "bench-local-key-0123456789abcdefghij"
SONNET = "claude-sonnet-4-20250514"
FAILED: list[str] = []


def budget(ok: bool, text: str) -> str:
    if not ok:
        FAILED.append(text)
    return "PASS" if ok else "FAIL"


# -- the thread-per-connection alternative -------------------------------------------------------


def threaded_proxy(upstreams: dict[str, tuple[str, dict[str, str]]], ports: Any) -> None:
    """A minimal pass-through proxy on the standard library: /<name>/<rest> → base/<rest> with headers.

    Runs in a process of its own (like serve), and puts its port on ``ports``.
    """
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=256)
    session.mount("http://", adapter)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        timeout = 300  # what serve had: an idle client could hold a thread this long

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.forward()

        def do_POST(self) -> None:
            self.forward()

        def forward(self) -> None:
            name, _, rest = self.path[1:].partition("/")
            base, headers = upstreams[name]
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            sent = {k: v for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length", "authorization", "x-api-key", "connection")}
            upstream = session.request(self.command, f"{base}/{rest}", data=body, headers={**sent, **headers},
                                       stream=True, timeout=(10, 600))
            self.send_response(upstream.status_code)
            self.send_header("Content-Type", upstream.headers.get("Content-Type", "application/json"))
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for data in upstream.raw.stream(65536, decode_content=True):
                    self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            finally:
                upstream.close()

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = socket.SOMAXCONN

    server = Server(("127.0.0.1", 0), Handler)
    ports.put(server.server_address[1])
    server.serve_forever()


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return -1


def start_gateway(home: Path) -> tuple[subprocess.Popen[str], str, int]:
    """`oauth-hub serve` as people run it: its own process, the stable key from the home."""
    (home / "serve_key").write_text(KEY + "\n")
    (home / "serve_key").chmod(0o600)
    env = dict(os.environ, OAUTH_HUB_HOME=str(home))
    process = subprocess.Popen([sys.executable, "-m", "oauth_hub", "serve", "--port", "0", "--stable-key", "--quiet",
                                "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    info = json.loads(process.stdout.readline())
    return process, info["base_url"], int(info["port"])


# -- measuring ------------------------------------------------------------------------------------


def burst(url: str, headers: dict[str, str], n: int = 64) -> tuple[float, int]:
    """Seconds until ``n`` requests on ``n`` new connections, started together, have all answered."""
    gate = threading.Barrier(n + 1)

    def one(_: int) -> bool:
        gate.wait()
        try:
            with requests.Session() as session:
                return session.get(url, headers=headers, timeout=(30, 60)).status_code == 200
        except requests.RequestException:
            return False

    with ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(one, i) for i in range(n)]
        gate.wait()
        start = time.perf_counter()
        ok = sum(f.result() for f in futures)
        return time.perf_counter() - start, ok


def mixed(plain: Callable[[], bool], streamed: Callable[[], bool]) -> tuple[float, int]:
    """200 concurrent requests (150 plain, 50 streamed): seconds and successes."""
    def one(i: int) -> bool:
        try:
            return (plain if i % 4 else streamed)()
        except requests.RequestException:
            return False

    start = time.perf_counter()
    with ThreadPoolExecutor(200) as pool:
        ok = sum(pool.map(one, range(200)))
    return time.perf_counter() - start, ok


def medians(fn: Callable[[], Any], n: int) -> float:
    for _ in range(min(20, n)):
        fn()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def half_open(port: int, pid: int, wait: float) -> tuple[int, float | None]:
    """Open 300 connections that never finish their request head; (threads added, seconds until all closed)."""
    before = threads_of(pid)
    sockets = []
    for _ in range(300):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"GET /chatgpt/models HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Slow: " % port)
        sockets.append(sock)
    start = time.perf_counter()
    time.sleep(0.5)
    added = threads_of(pid) - before
    pending = set(sockets)
    while pending and time.perf_counter() - start < wait:
        readable, _, _ = select.select(list(pending), [], [], 0.05)
        for sock in readable:
            try:
                if sock.recv(4096) == b"":
                    pending.discard(sock)
            except OSError:
                pending.discard(sock)
    took = time.perf_counter() - start if not pending else None
    for sock in sockets:
        sock.close()
    return added, took


def cancel_latency(port: int, path: str, body: dict[str, Any], claude: FakeAnthropic, marker: bytes) -> float | None:
    """Seconds from the client closing mid-stream to the upstream noticing (None: not within 5 s)."""
    payload = json.dumps(body).encode()
    before = len(claude.aborted_streams)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
                     b"anthropic-version: 2023-06-01\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                     % (path.encode(), port, KEY.encode(), len(payload), payload))
        received = b""
        while marker not in received:
            received += sock.recv(65536)
    closed = time.perf_counter()
    while len(claude.aborted_streams) == before:
        if time.perf_counter() - closed > 5:
            return None
        time.sleep(0.002)
    return time.perf_counter() - closed


def translation_cost(n: int) -> tuple[float, float]:
    """Median ms to translate a Chat request into Responses, and µs per streamed event back into Chat."""
    request = {"model": "gpt-5", "stream": True, "messages": [
        {"role": "system", "content": "You are a careful coding assistant. " * 20},
        *[{"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i} " * 40} for i in range(8)],
        {"role": "user", "content": "go"}],
        "tools": [{"type": "function", "function": {"name": f"tool{i}", "description": "d" * 80,
                                                      "parameters": {"type": "object", "properties": {
                                                          "path": {"type": "string"}}}}} for i in range(6)]}
    writer_events = [neutral.Started("resp_1", "gpt-5"),
                     *[neutral.TextDelta(f"word{i} ") for i in range(50)],
                     neutral.ToolCallStarted(0, "call_1", "tool1"),
                     *[neutral.ToolCallDelta(0, '{"pa') for _ in range(8)],
                     neutral.Finished(neutral.TOOL_CALLS, neutral.Usage(100, 60))]
    upstream = b"".join(responses.StreamWriter({"model": "gpt-5"}).write(e) for e in writer_events)
    from oauth_core.gateway.sse import SSEReader

    count = len(SSEReader().feed(upstream))

    def stream() -> None:
        reader, decoder, writer = SSEReader(), responses.StreamReader(), chat.StreamWriter(request)
        for name, data in reader.feed(upstream):
            for item in decoder.feed(name, data):
                writer.write(item)

    return (medians(lambda: responses.write_request(chat.read_request(request)), n),
            medians(stream, n) * 1000 / count)


# -- the run -------------------------------------------------------------------------------------------


def seed_models(provider: str, home: Path) -> None:
    store = Store(home)
    loaded = Provider.load(provider, store)
    entries = build_model_entries(loaded, HttpClient(), load_credentials(provider, store))
    write_model_entries(store.models_path(provider), entries, loaded.settings["oauth_source"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="skip the half-open figure (it waits for the deadline)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI(organization_id=None, project_id=None) as codex, \
            FakeAnthropic(stream_delay=0) as claude:
        home = Path(tmp) / "home"
        home.mkdir(mode=0o700)
        (home / "config.toml").write_text(tomli_w.dumps({"providers": {
            "chatgpt": {"issuer": codex.issuer, "api_base": codex.api_base, "chatgpt_base": codex.chatgpt_base},
            "claude_code": claude.provider_settings()}}))
        codex_tokens, claude_tokens = codex.mint_tokens(), claude.mint_tokens()
        seed_sign_in("chatgpt", codex_tokens, home=home)
        seed_models("chatgpt", home)
        seed_sign_in("claude_code", claude_tokens, home=home)
        seed_models("claude_code", home)
        gateway, gateway_url, gateway_port = start_gateway(home)
        codex_auth = {"Authorization": f"Bearer {codex_tokens['access_token']}", "ChatGPT-Account-Id": codex.account_id}
        claude_auth = {"Authorization": f"Bearer {claude_tokens['access_token']}", "anthropic-beta": "oauth-2025-04-20",
                       "anthropic-version": "2023-06-01"}
        spawn = multiprocessing.get_context("spawn")
        ports = spawn.Queue()
        proxy = spawn.Process(target=threaded_proxy, daemon=True, args=(
            {"chatgpt": (codex.chatgpt_base, codex_auth), "claude_code": (claude.api_base, claude_auth)}, ports))
        proxy.start()
        proxy_port = ports.get(timeout=30)
        local = {"Authorization": f"Bearer {KEY}"}
        ways = {
            "direct": (f"{codex.chatgpt_base}/models?client_version=1", codex_auth),
            "gateway": (f"{gateway_url}/chatgpt/models?client_version=1", local),
            "threads": (f"http://127.0.0.1:{proxy_port}/chatgpt/models?client_version=1", local),
        }
        print("oauth-hub serve (issue 12 figures); every row measured in this run\n")

        # 1. burst
        bursts = {name: burst(url, headers) for name, (url, headers) in ways.items()}
        print("1. 64 new connections at once (wall time, answered)")
        for name, (took, ok) in bursts.items():
            print(f"   {name:<8} {took * 1000:8.1f} ms  {ok}/64  {took / bursts['direct'][0]:5.2f}x direct")
        ratio = bursts["gateway"][0] / bursts["direct"][0]
        print(f"   gateway {ratio:.2f}x direct, all answered: "
              f"{budget(ratio <= 10 and bursts['gateway'][1] == 64, 'burst')} (budget 10x)\n")

        # 2. 200 concurrent
        stream_body = {"model": SONNET, "max_tokens": 16, "stream": True, "system": CLAUDE_CODE_SYSTEM_PREFIX,
                       "messages": [{"role": "user", "content": "ping"}]}

        def plain_of(url: str, headers: dict[str, str]) -> Callable[[], bool]:
            return lambda: requests.get(url, headers=headers, timeout=(30, 120)).status_code == 200

        def streamed_of(url: str, headers: dict[str, str], body: dict[str, Any]) -> Callable[[], bool]:
            def go() -> bool:
                answer = requests.post(url, json=body, headers=headers, timeout=(30, 120))
                return answer.status_code == 200 and b"message_stop" in answer.content
            return go

        proxy_base = f"http://127.0.0.1:{proxy_port}"
        gateway_body = dict(stream_body, model=f"claude_code/{SONNET}")
        mixes = {
            "direct": mixed(plain_of(*ways["direct"]), streamed_of(f"{claude.api_base}/v1/messages", claude_auth,
                                                                   stream_body)),
            "gateway": mixed(plain_of(*ways["gateway"]), streamed_of(f"{gateway_url}/v1/messages",
                                                                     {**local, "anthropic-version": "2023-06-01"},
                                                                     gateway_body)),
            "threads": mixed(plain_of(*ways["threads"]), streamed_of(f"{proxy_base}/claude_code/v1/messages", local,
                                                                     stream_body)),
        }
        print("2. 200 concurrent requests: 150 plain + 50 streamed (wall time, succeeded)")
        for name, (took, ok) in mixes.items():
            print(f"   {name:<8} {took * 1000:8.1f} ms  {ok}/200")
        print(f"   gateway all succeeded: {budget(mixes['gateway'][1] == 200, '200 concurrent')}\n")

        # 3. concurrency 1
        singles = {}
        for name, (url, headers) in ways.items():
            with requests.Session() as session:
                singles[name] = medians(lambda s=session, u=url, h=headers: s.get(u, headers=h, timeout=10),
                                        args.requests)
        print(f"3. one request at a time, pass-through GET /chatgpt/models (median of {args.requests})")
        for name, ms in singles.items():
            print(f"   {name:<8} {ms:7.2f} ms  {ms / singles['direct']:5.2f}x direct")
        ratio = singles["gateway"] / singles["direct"]
        print(f"   gateway {ratio:.2f}x direct: {budget(ratio <= 3, 'concurrency 1')} (budget 3x)\n")

        # 4. translation
        request_ms, event_us = translation_cost(args.requests)
        plain = {"max_tokens": 16, "messages": [{"role": "user", "content": "ping"}]}
        headers = {**local, "anthropic-version": "2023-06-01"}
        with requests.Session() as session:
            same = medians(lambda: session.post(f"{gateway_url}/v1/messages", json=dict(
                plain, model=f"claude_code/{SONNET}"), headers=headers, timeout=10), args.requests)
            translated = medians(lambda: session.post(f"{gateway_url}/v1/chat/completions", json=dict(
                plain, model=f"claude_code/{SONNET}"), headers=local, timeout=10), args.requests)
        print("4. translation")
        print(f"   in process: a 10-message, 6-tool Chat request into Responses: {request_ms:.3f} ms median; "
              f"a Responses stream into Chat: {event_us:.1f} µs per event")
        print(f"   end to end: /v1/messages (same dialect) {same:.2f} ms, /v1/chat/completions (translated) "
              f"{translated:.2f} ms: +{translated - same:.2f} ms at the median")
        print(f"   {budget(translated - same <= 1, 'translation')} (budget +1 ms at the median)\n")

        # 5. half-open
        if not args.quick:
            print("5. 300 half-open connections (threads added; seconds until the server closed them all)")
            added, took = half_open(gateway_port, gateway.pid, 15)
            print(f"   gateway  threads +{added:<4} closed after {took if took is None else round(took, 1)} s "
                  "(deadline 10 s)")
            proxy_added, proxy_took = half_open(proxy_port, proxy.pid or 0, 12)
            print(f"   threads  threads +{proxy_added:<4} "
                  f"{'still open after 12 s' if proxy_took is None else f'closed after {proxy_took:.1f} s'}")
            ok = added < 10 and took is not None and took <= 10.5
            print(f"   {budget(ok, 'half-open')} (budget: no thread each, closed within 10 s)\n")

        # 6. cancellation
        claude.stream_stall = 30
        latencies = [cancel_latency(gateway_port, "/v1/chat/completions",
                                    {"model": f"claude_code/{SONNET}", "stream": True,
                                     "messages": [{"role": "user", "content": "ping"}]},
                                    claude, b'"delta":{"content":"p"}') for _ in range(5)]
        claude.stream_stall = 0
        known = [x for x in latencies if x is not None]
        worst = max(known) if len(known) == len(latencies) else None
        print("6. a client hangs up mid-stream while the upstream is silent: until the upstream sees it closed")
        print(f"   gateway  median {statistics.median(known) * 1000 if known else float('nan'):.1f} ms, "
              f"worst {'> 5 s' if worst is None else f'{worst * 1000:.1f} ms'}: "
              f"{budget(worst is not None and worst <= 1, 'cancel')} (budget 1 s)")

        gateway.terminate()
        gateway.wait(10)
        proxy.terminate()
    if FAILED:
        print(f"\nFAILED: {', '.join(FAILED)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
