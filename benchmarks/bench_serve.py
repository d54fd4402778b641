"""How much latency does `oauth-hub serve` add to a request, against calling the upstream directly?

Run from a checkout with the package installed:

    python benchmarks/bench_serve.py [--requests 500] [--keep-nagle]

Each row calls the same fake upstream (``oauth_core.testing``) two ways in this run, each
with its own keep-alive ``requests`` session: directly with the real credentials, as a
tool holding them would, and through serve (``http://127.0.0.1:PORT/<provider>/...``)
with the local key, which serve turns into the same upstream request with credentials
from the store.

- ``GET /v1/models`` on the fake OpenAI API, with an API key;
- a streamed ``POST /v1/messages`` (``"stream": true``) on the fake Anthropic API: the
  time to the first chunk and to the end of the stream.

Printed as medians, the added milliseconds, and the ratio via-serve / direct, so the
figures mean the same on a fast or a slow machine. Nothing leaves 127.0.0.1; every
server binds a free port.

The fakes write a response's headers and body in separate small writes without
``TCP_NODELAY``; on a reused connection that meets the reader's delayed ACK and costs
about 40 ms a response on Linux, on both paths alike, hiding what serve adds. So this
script turns Nagle off on the fakes' sockets, as real API servers do (serve turns it off
on its own); ``--keep-nagle`` shows the fakes as they are.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests
import tomli_w

from oauth_core import serve as hub_serve
from oauth_core.testing import fake_anthropic, fake_openai
from oauth_core.testing.fake_anthropic import FakeAnthropic
from oauth_core.testing.fake_openai import FakeOpenAI
from oauth_core.testing.seed import seed_sign_in

KEY = "bench-local-key-0123456789abcdefghij"
API_KEY = "sk-bench-api-key"


def timings(fn: Callable[[], None], n: int) -> list[float]:
    """Milliseconds per call, after a warm-up that opens the keep-alive connections."""
    for _ in range(min(20, n)):
        fn()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def row(label: str, direct: list[float], proxied: list[float]) -> None:
    d, p = statistics.median(direct), statistics.median(proxied)
    p90 = sorted(proxied)[int(len(proxied) * 0.9)]
    print(f"  {label:<38} direct {d:7.2f} ms   via serve {p:7.2f} ms (p90 {p90:6.2f})   "
          f"+{p - d:6.2f} ms   {p / d:5.2f}x")


def stream_timings(session: requests.Session, url: str, headers: dict[str, str], body: dict,
                   n: int) -> tuple[list[float], list[float]]:
    """Milliseconds to the first chunk and to the end of a streamed answer, per call."""
    first, whole = [], []
    for i in range(n + 10):
        start = time.perf_counter()
        with session.post(url, json=body, headers=headers, stream=True, timeout=10) as response:
            response.raise_for_status()
            chunks = response.iter_content(chunk_size=None)
            next(chunks)
            got_first = time.perf_counter()
            for _ in chunks:
                pass
        if i >= 10:  # the first ten warm the connections
            first.append((got_first - start) * 1000)
            whole.append((time.perf_counter() - start) * 1000)
    return first, whole


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--keep-nagle", action="store_true", help="leave the fakes' sockets as they are")
    args = parser.parse_args()
    if not args.keep_nagle:
        fake_openai._Handler.disable_nagle_algorithm = True
        fake_anthropic._Handler.disable_nagle_algorithm = True

    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI() as idp, FakeAnthropic(stream_delay=0) as claude:
        home = Path(tmp) / "home"
        home.mkdir(mode=0o700)
        config = {"providers": {
            "chatgpt": {"issuer": idp.issuer, "api_base": idp.api_base, "chatgpt_base": idp.chatgpt_base},
            "claude_code": claude.provider_settings(),
        }}
        (home / "config.toml").write_text(tomli_w.dumps(config))
        idp.issued_api_keys.add(API_KEY)
        seed_sign_in("chatgpt", idp.mint_tokens(), home=home, api_key=API_KEY)
        tokens = claude.mint_tokens()
        seed_sign_in("claude_code", tokens, home=home)
        server = hub_serve.make_server(port=0, key=KEY, home=home)
        hub_serve.start_in_thread(server)
        direct, proxied = requests.Session(), requests.Session()
        try:
            def get(session: requests.Session, url: str, key: str) -> Callable[[], None]:
                return lambda: session.get(url, headers={"Authorization": f"Bearer {key}"},
                                           timeout=10).raise_for_status()

            models_direct = timings(get(direct, f"{idp.api_base}/models", API_KEY), args.requests)
            models_serve = timings(get(proxied, f"{server.base_url}/chatgpt/models", KEY), args.requests)

            body = {"model": claude.models[0]["id"], "max_tokens": 8, "stream": True,
                    "messages": [{"role": "user", "content": "ping"}]}
            upstream = {"Authorization": f"Bearer {tokens['access_token']}", "anthropic-beta": "oauth-2025-04-20",
                        "anthropic-version": "2023-06-01"}
            local = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
            n = max(args.requests // 5, 20)
            first_direct, whole_direct = stream_timings(direct, f"{claude.api_base}/v1/messages", upstream, body, n)
            first_serve, whole_serve = stream_timings(proxied, f"{server.base_url}/claude_code/v1/messages", local,
                                                      body, n)
        finally:
            direct.close()
            proxied.close()
            server.shutdown()
            server.server_close()

    nagle = "as they are" if args.keep_nagle else "with TCP_NODELAY"
    print(f"oauth-hub serve: added latency against calling the same fake upstream directly (fakes {nagle}; "
          f"medians of {args.requests} / {n} requests)")
    row("GET /v1/models (JSON)", models_direct, models_serve)
    row("streamed /v1/messages: first chunk", first_direct, first_serve)
    row("streamed /v1/messages: whole stream", whole_direct, whole_serve)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
