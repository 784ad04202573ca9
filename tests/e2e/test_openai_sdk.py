"""The official OpenAI Python SDK works unchanged through the router: chat and legacy
completions (plain and streamed), tool calls, the Responses API (plain and streamed),
embeddings, the model list, and the router's errors raised as the SDK's own error classes."""
import json
import math

import openai
import pytest
import requests

from harness import Router, Sim, free_port, wait_until

TOKENS = "tok1 tok2 tok3 tok4 "
USER = [{"role": "user", "content": "hi"}]
CHAT_TOOLS = [{"type": "function", "function": {
    "name": "lookup", "description": "Look a word up",
    "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}}]
RESPONSES_TOOLS = [{"type": "function", "name": "lookup", "description": "Look a word up",
                    "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}]


def client(router):
    return openai.OpenAI(base_url=f"{router.envoy.url}/v1", api_key="unused", max_retries=0, timeout=20)


class Unreachable:
    """A model endpoint nothing listens on: every attempt is refused."""

    def __init__(self, name):
        self.name = name
        self.endpoint = f"http://127.0.0.1:{free_port()}"

    def requests(self):
        return 0


@pytest.fixture(scope="module")
def routed(tmp_path_factory):
    """default = [m1, m2, m3]; `limited` always answers 429; `gone` refuses connections.
    Shared by the tests that only read: none of them changes a simulator."""
    sims = [Sim(f"m{i}", ttft_ms=5, output_tokens=4) for i in (1, 2, 3)]
    sims.append(Sim("limited", fail="429", retry_after=7))
    try:
        r = Router(tmp_path_factory.mktemp("sdk"), [*sims, Unreachable("gone")],
                   {"default": ["m1", "m2", "m3"]})
    except Exception:
        for s in sims:
            s.stop()
        raise
    yield r
    r.stop()
    for s in sims:
        s.stop()


def test_sdk_streams_an_answer_through_the_default_pool(trio):
    stream = client(trio).chat.completions.create(
        model="default", stream=True, stream_options={"include_usage": True}, messages=USER)
    text, usage = "", None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage:
            usage = chunk.usage
    assert text.split() == ["tok1", "tok2", "tok3", "tok4"]
    assert usage.completion_tokens == 4


def test_killing_the_first_model_changes_nothing_but_the_serving_model(trio):
    c = client(trio)
    before = c.chat.completions.with_raw_response.create(model="default", messages=USER)
    trio.sims["m1"].stop()
    after = c.chat.completions.with_raw_response.create(model="default", messages=USER)
    assert before.headers["x-model-router-model"] == "m1"
    assert after.headers["x-model-router-model"] == "m2"
    a, b = before.parse(), after.parse()
    assert a.choices[0].message.content == b.choices[0].message.content
    assert b.model == "up/m2"


def test_plain_chat_completion_carries_text_usage_and_the_upstream_model(routed):
    answer = client(routed).chat.completions.create(model="default", messages=USER)
    assert answer.choices[0].message.content == TOKENS
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage.completion_tokens == 4
    assert answer.model == "up/m1"


def test_legacy_completions_plain_and_streamed(routed):
    c = client(routed)
    plain = c.completions.create(model="default", prompt="say something")
    assert plain.choices[0].text == TOKENS
    assert plain.usage.completion_tokens == 4
    stream = c.completions.create(model="default", prompt="say something", stream=True,
                                  stream_options={"include_usage": True})
    text, usage = "", None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].text
        if chunk.usage:
            usage = chunk.usage
    assert text == TOKENS
    assert usage.completion_tokens == 4


def test_models_list_and_retrieve_show_models_pools_and_strategies(routed):
    c = client(routed)
    ids = [m.id for m in c.models.list()]
    assert ids == ["m1", "m2", "m3", "limited", "gone",
                   "default", "default:latency", "default:throughput"]
    assert c.models.retrieve("DEFAULT:throughput").id == "DEFAULT:throughput"
    with pytest.raises(openai.NotFoundError) as e:
        c.models.retrieve("nope")
    assert e.value.code == "model_not_found"


def test_forced_tool_choice_comes_back_as_a_tool_call_plain_and_streamed(routed):
    c = client(routed)
    plain = c.chat.completions.create(model="default", messages=USER, tools=CHAT_TOOLS,
                                      tool_choice="required")
    call = plain.choices[0].message.tool_calls[0]
    assert plain.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "lookup"
    assert json.loads(call.function.arguments) == {"text": TOKENS}

    stream = c.chat.completions.create(
        model="default", messages=USER, tools=CHAT_TOOLS, stream=True,
        tool_choice={"type": "function", "function": {"name": "lookup"}})
    names, arguments, finish = [], "", None
    for chunk in stream:
        for delta_call in chunk.choices[0].delta.tool_calls or []:
            if delta_call.function.name:
                names.append(delta_call.function.name)
            arguments += delta_call.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert names == ["lookup"]
    assert json.loads(arguments) == {"text": TOKENS}
    assert finish == "tool_calls"


def test_tool_definitions_reach_the_model_unchanged_but_for_the_model_name(routed):
    c = client(routed)
    raw = c.chat.completions.with_raw_response.create(
        model="default", messages=USER, tools=CHAT_TOOLS, tool_choice="auto")
    assert raw.parse().choices[0].message.content == TOKENS
    served = routed.sims[raw.headers["x-model-router-model"]]
    sent = json.loads(served.stats()["last_request"]["body"])
    assert sent["model"] == f"up/{served.name}"
    assert sent["tools"] == CHAT_TOOLS and sent["tool_choice"] == "auto"


def test_responses_api_plain_streamed_and_with_a_tool(routed):
    c = client(routed)
    plain = c.responses.create(model="default", input="say something")
    assert plain.output_text == TOKENS
    assert plain.usage.output_tokens == 4
    assert plain.status == "completed"

    events = list(c.responses.create(model="default", input="say something", stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == TOKENS
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].response.usage.output_tokens == 4
    assert events[-1].response.output_text == TOKENS

    called = c.responses.create(model="default", input="look it up", tools=RESPONSES_TOOLS,
                                tool_choice="required")
    item = called.output[0]
    assert item.type == "function_call" and item.name == "lookup"
    assert json.loads(item.arguments) == {"text": TOKENS}


def model_status(router, name):
    status = requests.get(f"{router.envoy.url}/model-router/status", timeout=5).json()
    return next(m for m in status["models"] if m["name"] == name)


def test_embeddings_through_a_pool_give_no_ttft_sample_but_streamed_responses_do(sims, router):
    r = router([sims("m1", ttft_ms=5, output_tokens=4), sims("m2", ttft_ms=5, output_tokens=4)],
               {"default": ["m1", "m2"]})
    c = client(r)
    raw = c.embeddings.with_raw_response.create(model="default", input=["a", "b c"])
    assert raw.headers["x-model-router-model"] == "m1"
    vectors = [d.embedding for d in raw.parse().data]
    assert len(vectors) == 2 and all(len(v) == 8 for v in vectors)
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-3 for v in vectors)
    floats = c.embeddings.create(model="default", input="a", encoding_format="float")
    assert floats.data[0].embedding == pytest.approx(vectors[0], abs=1e-6)
    assert model_status(r, "m1")["ttft_ms"] is None, "embeddings are not TTFT samples"

    # A streamed Responses tool call's only output is its argument deltas, which a scanner
    # that knows only chat fields never sees: a TTFT sample proves Responses events are read.
    stream = c.responses.create(model="default", input="hi", stream=True,
                                tools=RESPONSES_TOOLS, tool_choice="required")
    kinds = [e.type for e in stream]
    assert "response.function_call_arguments.delta" in kinds and kinds[-1] == "response.completed"
    ttft = wait_until(lambda: model_status(r, "m1")["ttft_ms"], 5, "a TTFT sample for m1")
    assert ttft > 0


# Errors: the router's own, the model's own, and Envoy's (rewritten to OpenAI's shape).
def post_raw(c, path, body):
    return c.post(path, body=body, cast_to=object)


ERRORS = [
    ("unknown model", lambda c: c.chat.completions.create(model="nope", messages=USER),
     openai.NotFoundError, 404, "model_not_found", "nope"),
    ("unknown strategy", lambda c: c.chat.completions.create(model="default:cheapest", messages=USER),
     openai.NotFoundError, 404, "model_not_found", "latency"),
    ("unknown model, streamed", lambda c: c.chat.completions.create(model="nope", messages=USER, stream=True),
     openai.NotFoundError, 404, "model_not_found", "nope"),
    ("unknown model, responses", lambda c: c.responses.create(model="nope", input="hi"),
     openai.NotFoundError, 404, "model_not_found", "nope"),
    ("body without model", lambda c: post_raw(c, "/chat/completions", {"messages": USER}),
     openai.BadRequestError, 400, "missing_model", "model"),
    ("model not a string", lambda c: post_raw(c, "/embeddings", {"model": 7, "input": "x"}),
     openai.BadRequestError, 400, "invalid_type", "model"),
    ("audio is not routed", lambda c: c.audio.speech.create(model="default", voice="alloy", input="hi"),
     openai.NotFoundError, 404, "unknown_url", "/v1/audio/speech"),
    ("files are not routed", lambda c: c.files.list(),
     openai.NotFoundError, 404, "unknown_url", "/v1/files"),
    ("file upload is not routed", lambda c: c.files.create(file=("a.jsonl", b"{}\n" * 1000), purpose="batch"),
     openai.NotFoundError, 404, "unknown_url", "/v1/files"),
    # Answered before the body is read: the client still gets the error, not a stalled upload.
    ("large file upload is not routed", lambda c: c.files.create(file=("big.jsonl", b"x" * 5_000_000),
                                                                 purpose="batch"),
     openai.NotFoundError, 404, "unknown_url", "/v1/files"),
    ("wrong method", lambda c: c.get("/chat/completions", cast_to=object),
     openai.APIStatusError, 405, "method_not_allowed", "POST"),
    ("model rate-limited", lambda c: c.chat.completions.create(model="limited", messages=USER),
     openai.RateLimitError, 429, "rate_limit_exceeded", "Rate limit reached for limited"),
    ("model unreachable", lambda c: c.chat.completions.create(model="gone", messages=USER),
     openai.InternalServerError, 503, None, None),
]


@pytest.mark.parametrize("name,call,error,status,code,text", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_raise_the_sdk_error_class_with_the_routers_message(routed, name, call, error, status, code, text):
    with pytest.raises(error) as e:
        call(client(routed))
    assert e.value.status_code == status
    body = e.value.body  # the SDK keeps the "error" object of the answer
    assert isinstance(body, dict) and body["message"] and body["type"], body
    assert body["message"] in str(e.value)
    if code is not None:
        assert e.value.code == code
        assert text in body["message"]
    else:
        # Envoy's own reply: its response code details become the code.
        assert e.value.code and "upstream" in body["type"]
