"""The official OpenAI Python SDK works unchanged through the router, streaming included."""
import openai
import pytest


def client(router):
    return openai.OpenAI(base_url=f"{router.envoy.url}/v1", api_key="unused", max_retries=0, timeout=20)


def test_sdk_streams_an_answer_through_the_default_pool(trio):
    stream = client(trio).chat.completions.create(
        model="default", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "hi"}])
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
    before = c.chat.completions.with_raw_response.create(
        model="default", messages=[{"role": "user", "content": "hi"}])
    trio.sims["m1"].stop()
    after = c.chat.completions.with_raw_response.create(
        model="default", messages=[{"role": "user", "content": "hi"}])
    assert before.headers["x-model-router-model"] == "m1"
    assert after.headers["x-model-router-model"] == "m2"
    a, b = before.parse(), after.parse()
    assert a.choices[0].message.content == b.choices[0].message.content
    assert b.model == "up/m2"


def test_sdk_raises_its_own_error_classes_with_the_router_message(trio):
    c = client(trio)
    with pytest.raises(openai.NotFoundError) as e:
        c.chat.completions.create(model="nope", messages=[])
    assert "nope" in str(e.value) and e.value.code == "model_not_found"
    models = [m.id for m in c.models.list()]
    assert "default:latency" in models
