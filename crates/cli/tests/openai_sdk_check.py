"""Drives an `inferbench mock` instance with the official OpenAI Python SDK.

usage: python3 openai_sdk_check.py BASE_URL
Exits non-zero (with the failing assertion) if the SDK cannot use the mock as it uses vLLM.
"""
import sys

import openai

base = sys.argv[1].rstrip("/") + "/v1"
client = openai.OpenAI(base_url=base, api_key="not-used", max_retries=0, timeout=30)

models = [m.id for m in client.models.list()]
assert models[0] == "mock-model", models

# Chat, unary.
r = client.chat.completions.create(
    model="mock-model",
    messages=[{"role": "user", "content": "Say hello"}],
    max_tokens=12,
    extra_body={"ignore_eos": True},
)
assert r.object == "chat.completion", r
assert r.usage.completion_tokens == 12, r.usage
assert r.choices[0].finish_reason == "length", r.choices[0]
assert r.choices[0].message.role == "assistant"
assert len(r.choices[0].message.content) > 0

# Chat, streaming with usage.
stream = client.chat.completions.create(
    model="mock-model",
    messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "Count"}],
    max_completion_tokens=20,
    stream=True,
    stream_options={"include_usage": True},
    extra_body={"ignore_eos": True},
)
pieces, usage, finish = [], None, None
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage
    for c in chunk.choices:
        if c.delta.content:
            pieces.append(c.delta.content)
        if c.finish_reason:
            finish = c.finish_reason
assert len(pieces) == 20, pieces
assert usage is not None and usage.completion_tokens == 20, usage
assert usage.prompt_tokens > 0
assert finish == "length"

# Completions, unary and streaming.
r = client.completions.create(model="mock-model", prompt="Once upon a time", max_tokens=7,
                              extra_body={"ignore_eos": True})
assert r.usage.completion_tokens == 7 and r.usage.prompt_tokens == 4, r.usage
assert r.choices[0].text
n = 0
for chunk in client.completions.create(model="mock-model", prompt="x", max_tokens=5, stream=True,
                                       extra_body={"ignore_eos": True}):
    n += sum(1 for c in chunk.choices if c.text)
assert n == 5, n

# Errors surface as the SDK's typed exceptions.
try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("expected NotFoundError")
except openai.NotFoundError as e:
    assert e.status_code == 404
try:
    client.chat.completions.create(model="mock-model", messages=[{"role": "user", "content": "x"}],
                                   extra_headers={"x-mock-error": "429"})
    raise AssertionError("expected RateLimitError")
except openai.RateLimitError as e:
    assert e.status_code == 429
print("openai SDK", openai.__version__, "OK")
