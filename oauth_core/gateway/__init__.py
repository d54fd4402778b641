"""The gateway behind ``oauth-hub serve``'s ``/v1``: one base URL, three dialects, any provider.

Design note. Clients speak one of three dialects: OpenAI Chat Completions, OpenAI
Responses, Anthropic Messages. Each provider's backend speaks one or more of them and
has rules of its own (the ChatGPT Codex backend wants ``instructions``, ``store:false``
and a stream; Anthropic subscription tokens want the identity line and betas of
Anthropic's own CLI).
Rather than a translator per pair of dialects, every dialect has a reader and a writer
for one small neutral form (:mod:`.neutral`): requests (``Conversation``), whole
answers (``Reply``) and streamed events. A call flows

    route by model (:mod:`.catalog`) → read the client's dialect → write the backend's
    → the provider's ``gateway_request`` hook applies the backend's rules → send
    → read the answer (stream or JSON) → write it in the client's dialect

and a same-dialect call skips translation (its body and stream pass through, the
provider's rules still applied). Everything provider-specific comes through four hooks
(``gateway_backend``, ``gateway_request``, ``gateway_response_event``,
``gateway_rate_limits``; see docs/hooks.md): this package names no provider, and a
third-party provider joins the gateway by implementing them.

Modules: :mod:`.neutral` (the form), :mod:`.sse` (event-stream reading and writing),
:mod:`.dialects` (one module per dialect), :mod:`.catalog` (model names → provider),
:mod:`.backend` (the request a hook adapts), :mod:`.exchange` (one /v1 call),
:mod:`.server` (aiohttp: auth, Host check, routes, raw forwarding, the header deadline),
:mod:`.usage` (rate-limit windows for ``status``). Importing this package imports none
of them: ``status`` reads :mod:`.usage` without loading aiohttp.
"""
