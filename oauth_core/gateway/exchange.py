"""One /v1 call: route by model, translate, let the provider adapt, send, and answer in the caller's dialect.

::

    client body ──read (client dialect)──► Conversation ──write (backend dialect)──┐
         └────────── same dialect: the body itself, model renamed ─────────────────┤
                                                                                   ▼
                                     provider's gateway_request hook (backend rules)
                                                                                   ▼
    client ◄── writer (client dialect) ◄── neutral events ◄── reader ◄── backend answer
         ◄──────────── same dialect, both streaming: the bytes as they come ───────┘

A caller that did not ask to stream gets one JSON answer even when the backend
insists on streaming (the stream is collected: natively for Responses, so nothing is
lost, else through :class:`~oauth_core.gateway.neutral.Aggregator`). Errors keep the
backend's status and message, in the caller's envelope.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientError, web

from . import dialects, neutral, sse
from .backend import BackendRequest
from .catalog import UnknownModel

MAX_ERROR_BODY = 1 << 20
#: Headers of a backend's error answer worth passing on to the client.
_KEEP_ON_ERROR = ("retry-after", "x-request-id", "request-id")


class GatewayError(Exception):
    """Answer the client with ``status`` and ``message`` in its dialect."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=json.dumps(payload).encode(), content_type="application/json",
                        headers=headers)


def error_response(dialect: str, status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(status, dialects.get(dialect).error_body(status, message), headers)


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        raise GatewayError(400, "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise GatewayError(400, "The request body must be a JSON object.")
    return body


class Exchange:
    """The state of one /v1 call; ``run`` answers it."""

    def __init__(self, gateway: Any, request: web.Request, dialect: str, raw: bytes) -> None:
        self.gateway = gateway
        self.request = request
        self.client = dialect
        self.raw = raw

    async def run(self) -> web.StreamResponse:
        try:
            return await self._run()
        except GatewayError as exc:
            return error_response(self.client, exc.status, exc.message)

    async def _run(self) -> web.StreamResponse:
        body = parse_body(self.raw)
        name = body.get("model")
        if not isinstance(name, str) or not name:
            raise GatewayError(400, "The request names no model. Send \"model\": \"<provider>/<model>\" "
                                    "(GET /v1/models lists them).")
        try:
            route = self.gateway.catalog.resolve(name)
        except UnknownModel as exc:
            raise GatewayError(404, str(exc)) from None
        provider = self.gateway.provider_or_error(route.provider)
        credentials = await self.gateway.credentials(route.provider, account=route.account)
        backend = provider.call("gateway_backend", required=False, credentials=credentials,
                                model=dict(route.entry)) or {}
        backend = {d: p for d, p in backend.items() if d in dialects.DIALECTS}  # dialects the gateway knows
        if not backend:
            raise GatewayError(404, f"{route.provider} does not take requests through the gateway; use the raw "
                                    f"route /{route.provider}/… in its own API.")
        target = self.client if self.client in backend else next(iter(backend))
        if target == self.client:
            out = dict(body)
            out["model"] = route.model
        else:
            conversation = dialects.get(self.client).read_request(body)
            conversation.model = route.model
            out = dialects.get(target).write_request(conversation)
        outgoing = BackendRequest(dialect=target, path=str(backend[target]).lstrip("/"), model=route.model,
                                  body=out, client_headers=self.gateway.client_headers(self.request),
                                  client_dialect=self.client, client_stream=body.get("stream") is True)
        provider.call("gateway_request", required=False, credentials=credentials, request=outgoing)
        wanted = dict(body, model=route.model)
        async with self.gateway.upstream(provider, credentials, "POST", outgoing.path,
                                         json.dumps(outgoing.body).encode(), outgoing.headers) as answer:
            if answer.status >= 300:
                detail = await answer.content.read(MAX_ERROR_BODY)
                kept = {k: answer.headers[k] for k in _KEEP_ON_ERROR if k in answer.headers}
                return error_response(self.client, answer.status, dialects.error_message(detail, answer.status),
                                      kept)
            hook = self.gateway.event_hook(provider, target)
            streamed = "text/event-stream" in answer.headers.get("Content-Type", "")
            if outgoing.client_stream:
                if streamed and target == self.client:
                    return await self._relay_stream(answer, hook)
                return await self._translated_stream(answer, target, streamed, hook, wanted)
            if streamed:
                return await self._collected(answer, target, hook, wanted)
            payload = await self._read_json(answer)
            if hook is not None:
                payload = hook(payload)
            if target == self.client:
                return json_response(200, payload)
            reply = dialects.get(target).read_reply(payload)
            return json_response(200, dialects.get(self.client).write_reply(reply, wanted))

    # -- answering ------------------------------------------------------------------------

    async def _start_stream(self) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream; charset=utf-8",
                                                           "Cache-Control": "no-cache"})
        await response.prepare(self.request)
        return response

    async def _relay_stream(self, answer: Any, hook: Callable[[dict[str, Any]], dict[str, Any]] | None
                            ) -> web.StreamResponse:
        """Same dialect on both sides: the backend's events as they arrive (re-encoded only for an event hook).

        Only whole events are passed on, so that when the backend breaks off (or ends
        before its answer is complete) the client gets a well-formed error event of its
        dialect after them instead of a cut connection: tools show that message, while a
        dropped connection reads as a network fault they retry.
        """
        response = await self._start_stream()
        reader = sse.SSEReader()
        decoder = dialects.get(self.client).StreamReader()
        pending = b""
        ended = False  # the backend said it finished, or failed, in its own words
        broke = False
        try:
            async for chunk in answer.content.iter_any():
                out = b""
                for name, data in reader.feed(chunk):
                    if hook is not None:
                        data = _apply(hook, data)
                        out += sse.event(name if name != "message" else None, data)
                    ended = any(isinstance(e, (neutral.Finished, neutral.Failed)) for e in decoder.feed(name, data)) \
                        or ended
                if hook is None:
                    pending += chunk
                    cut = max(pending.rfind(b"\n\n") + 2, pending.rfind(b"\r\n\r\n") + 4, 0)
                    out, pending = pending[:cut], pending[cut:]
                if out:
                    await response.write(out)
        except (ClientError, TimeoutError):
            broke = True
        failures = [e for e in decoder.close() if isinstance(e, neutral.Failed)]
        if broke and not ended and not failures:
            failures = [neutral.Failed(502, "The backend broke off the answer before it was complete.")]
        if not failures and pending:
            await response.write(pending)  # a last event without its blank line: the stream ended cleanly
        if failures and not ended:
            await response.write(dialects.get(self.client).StreamWriter({}).write(failures[0]))
        await response.write_eof()
        return response

    async def _translated_stream(self, answer: Any, target: str, streamed: bool,
                                 hook: Callable[[dict[str, Any]], dict[str, Any]] | None,
                                 wanted: dict[str, Any]) -> web.StreamResponse:
        writer = dialects.get(self.client).StreamWriter(wanted)
        response = await self._start_stream()
        if not streamed:  # a whole answer to a caller that wanted a stream
            payload = await self._read_json(answer)
            reply = dialects.get(target).read_reply(hook(payload) if hook else payload)
            await response.write(b"".join(writer.write(e) for e in neutral.events_of(reply)))
            await response.write_eof()
            return response
        reader = sse.SSEReader()
        decoder = dialects.get(target).StreamReader()
        try:
            async for chunk in answer.content.iter_any():
                out = b""
                for name, data in reader.feed(chunk):
                    for item in decoder.feed(name, _apply(hook, data) if hook else data):
                        out += writer.write(item)
                if out:
                    await response.write(out)
        except (ClientError, TimeoutError):
            pass  # the backend broke off: the reader reports the unfinished answer below
        tail = b"".join(writer.write(e) for e in decoder.close())
        if tail:
            await response.write(tail)
        await response.write_eof()
        return response

    async def _collected(self, answer: Any, target: str, hook: Callable[[dict[str, Any]], dict[str, Any]] | None,
                         wanted: dict[str, Any]) -> web.StreamResponse:
        """A stream the caller did not ask for, collected into one answer in its dialect."""
        reader = sse.SSEReader()
        pairs: list[tuple[str, str]] = []
        try:
            async for chunk in answer.content.iter_any():
                pairs.extend(reader.feed(chunk))
        except (ClientError, TimeoutError):
            pass  # what arrived is judged below: an unfinished answer is a 502
        pairs.extend(reader.close())
        if hook is not None:
            pairs = [(name, _apply(hook, data)) for name, data in pairs]
        if target == self.client == "responses":
            events = [e for e in (_loads(data) for _, data in pairs) if isinstance(e, dict)]
            failed = next((e for e in events if e.get("type") in ("response.failed", "error")), None)
            whole = dialects.get(target).aggregate(events)
            if whole is not None and failed is None:
                return json_response(200, whole)
        decoder = dialects.get(target).StreamReader()
        folded = neutral.Aggregator()
        for name, data in pairs:
            for item in decoder.feed(name, data):
                folded.add(item)
        for item in decoder.close():
            folded.add(item)
        if folded.failed is not None:
            raise GatewayError(folded.failed.status, folded.failed.message)
        if not folded.finished:
            raise GatewayError(502, "The backend's stream ended before the answer was complete.")
        return json_response(200, dialects.get(self.client).write_reply(folded.reply, wanted))

    @staticmethod
    async def _read_json(answer: Any) -> dict[str, Any]:
        raw = await answer.read()
        payload = _loads(raw)
        if not isinstance(payload, dict):
            raise GatewayError(502, "The backend answered with something that is not a JSON object.")
        return payload


def _loads(data: str | bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def _apply(hook: Callable[[dict[str, Any]], dict[str, Any]], data: str) -> str:
    payload = _loads(data)
    if not isinstance(payload, dict):
        return data
    return json.dumps(hook(payload), separators=(",", ":"))


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
