"""The dialect readers and writers on their own: round trips through the neutral form, and SSE framing."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from oauth_core.gateway import neutral, sse
from oauth_core.gateway.dialects import DIALECTS, chat, error_message, messages, responses

STREAM = (b"event: message_start\r\ndata: {\"a\": 1}\r\n\r\n: a comment\n\nevent: x\ndata: line one\n"
          b"data: line two\n\ndata: [DONE]\n\n")


@given(st.lists(st.integers(min_value=1, max_value=len(STREAM) - 1), max_size=8, unique=True))
def test_sse_reader_gives_the_same_events_however_the_bytes_are_cut(cuts):
    reader = sse.SSEReader()
    events = []
    start = 0
    for cut in sorted(cuts) + [len(STREAM)]:
        events += reader.feed(STREAM[start:cut])
        start = cut
    assert events == [("message_start", '{"a": 1}'), ("x", "line one\nline two"), ("message", "[DONE]")]


def conversation() -> neutral.Conversation:
    return neutral.Conversation(
        model="m", system=["Be brief."], max_tokens=100, tool_choice="auto",
        tools=[neutral.Tool("weather", "Weather", {"type": "object", "properties": {"city": {"type": "string"}}})],
        messages=[
            neutral.Message("user", [neutral.Text("Weather in Paris?")]),
            neutral.Message("assistant", [neutral.Text("Let me check."),
                                          neutral.ToolCall("call_1", "weather", '{"city": "Paris"}')]),
            neutral.Message("user", [neutral.ToolResult("call_1", "sunny")]),
            neutral.Message("assistant", [neutral.Text("Sunny.")]),
            neutral.Message("user", [neutral.Text("Thanks"), neutral.Image("data:image/png;base64,AAAA")]),
        ])


def test_every_dialect_writes_and_reads_back_the_same_conversation():
    for name, dialect in DIALECTS.items():
        body = dialect.write_request(conversation())
        back = dialect.read_request(json.loads(json.dumps(body)))
        assert back.system == ["Be brief."], name
        assert back.tools == conversation().tools, name
        assert back.max_tokens == 100, name
        flat = [(m.role, p) for m in back.messages for p in m.parts]
        want = [(m.role, p) for m in conversation().messages for p in m.parts]
        assert flat == want, name


def test_written_messages_requests_alternate_roles_with_tool_results_first():
    body = messages.write_request(neutral.Conversation(model="m", messages=[
        neutral.Message("assistant", [neutral.ToolCall("t1", "a", "{}"), neutral.ToolCall("t2", "b", "")]),
        neutral.Message("user", [neutral.Text("and also")]),
        neutral.Message("user", [neutral.ToolResult("t1", "one"), neutral.ToolResult("t2", "two")]),
    ]))
    assert [m["role"] for m in body["messages"]] == ["assistant", "user"]
    assert [b["type"] for b in body["messages"][1]["content"]] == ["tool_result", "tool_result", "text"]
    assert body["messages"][0]["content"][1]["input"] == {}  # empty arguments are an empty object
    assert body["max_tokens"] == messages.DEFAULT_MAX_TOKENS


def test_chat_tool_messages_become_one_user_turn_of_results():
    conv = chat.read_request({"model": "m", "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "a", "content": "1"},
        {"role": "tool", "tool_call_id": "b", "content": [{"type": "text", "text": "2"}]},
    ]})
    assert conv.messages[2] == neutral.Message("user", [neutral.ToolResult("a", "1"), neutral.ToolResult("b", "2")])


def stream_through(writer_dialect, reader_dialect, events):
    """Write neutral events as one dialect's stream and read them back with the same dialect's reader."""
    writer = writer_dialect.StreamWriter({"model": "m", "stream_options": {"include_usage": True}})
    wire = b"".join(writer.write(e) for e in events)
    reader, decoder = sse.SSEReader(), reader_dialect.StreamReader()
    folded = neutral.Aggregator()
    for name, data in reader.feed(wire):
        for event in decoder.feed(name, data):
            folded.add(event)
    for event in decoder.close():
        folded.add(event)
    return folded


def test_each_stream_writer_is_read_back_by_its_reader():
    events = [neutral.Started("x", "m", 10), neutral.TextDelta("Hel"), neutral.TextDelta("lo"),
              neutral.ToolCallStarted(0, "call_1", "weather"), neutral.ToolCallDelta(0, '{"ci'),
              neutral.ToolCallDelta(0, 'ty": "Paris"}'), neutral.ToolCallStarted(1, "call_2", "time"),
              neutral.Finished(neutral.TOOL_CALLS, neutral.Usage(10, 7))]
    for dialect in DIALECTS.values():
        folded = stream_through(dialect, dialect, events)
        assert folded.finished and folded.failed is None, dialect.NAME
        reply = folded.reply
        assert reply.text() == "Hello", dialect.NAME
        assert [(c.id, c.name, c.arguments) for c in reply.tool_calls()] == [
            ("call_1", "weather", '{"city": "Paris"}'), ("call_2", "time", "")], dialect.NAME
        assert reply.stop_reason == neutral.TOOL_CALLS, dialect.NAME
        assert reply.usage.output_tokens == 7, dialect.NAME


def test_a_stream_cut_short_is_a_failure_not_a_finished_answer():
    for dialect in (responses, messages):
        writer = dialect.StreamWriter({"model": "m"})
        wire = writer.write(neutral.Started("x", "m")) + writer.write(neutral.TextDelta("partial"))
        decoder = dialect.StreamReader()
        for name, data in sse.SSEReader().feed(wire):
            decoder.feed(name, data)
        assert [type(e) for e in decoder.close()] == [neutral.Failed], dialect.NAME


def test_error_messages_are_found_in_every_shape():
    assert error_message(b'{"detail": "Instructions are required"}', 400) == "Instructions are required"
    assert error_message(b'{"error": {"message": "bad", "type": "x"}}', 400) == "bad"
    assert error_message(b'{"type": "error", "error": {"type": "t", "message": "m"}}', 400) == "m"
    assert error_message(b'{"detail": {"message": "nested"}}', 400) == "nested"
    assert error_message(b"plain words", 502) == "plain words"
    assert error_message(b"<html>proxy</html>", 502) == "The backend answered HTTP 502."
