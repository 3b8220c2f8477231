"""Drives Vigil's gateway with the unmodified official OpenAI Python SDK.

Usage: openai_sdk.py BASE_URL AGENT_ID
Prints one JSON object summarising what the SDK saw; exits non-zero on any SDK error
other than the ones it provokes on purpose.
"""

import json
import sys

import openai

base_url, agent = sys.argv[1], sys.argv[2]
client = openai.OpenAI(
    base_url=base_url,
    api_key="sk-client-own-key",
    default_headers={"X-Agent-ID": agent, "X-Vigil-Feature": "sdk-test"},
    max_retries=0,
)
messages = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello"},
]

whole = client.chat.completions.create(model="gpt-4o", messages=messages)

stream = client.chat.completions.create(model="gpt-4o", messages=messages, stream=True)
streamed_text, streamed_tools, stream_usage = "", set(), None
for chunk in stream:
    if chunk.usage is not None:
        stream_usage = chunk.usage.model_dump()
    for choice in chunk.choices:
        streamed_text += choice.delta.content or ""
        for call in choice.delta.tool_calls or []:
            streamed_tools.add(call.index)

with_usage = client.chat.completions.create(
    model="gpt-4o", messages=messages, stream=True, stream_options={"include_usage": True}
)
requested_usage = None
for chunk in with_usage:
    if chunk.usage is not None:
        requested_usage = chunk.usage.prompt_tokens

try:
    client.chat.completions.create(model="fail-429", messages=messages)
    rate_limited = None
except openai.RateLimitError as e:
    rate_limited = {"status": e.status_code, "type": e.body.get("type") if isinstance(e.body, dict) else None}

try:
    client.chat.completions.create(model="gpt-4o", messages="not a list")
    bad_request = None
except openai.BadRequestError as e:
    bad_request = {"status": e.status_code, "message": str(e)}

response = client.responses.create(model="gpt-4o", instructions="You are terse.", input="Say hello")
responses_text, responses_completed = "", False
for event in client.responses.create(model="gpt-4o", instructions="You are terse.", input="Say hello", stream=True):
    if event.type == "response.output_text.delta":
        responses_text += event.delta
    elif event.type == "response.completed":
        responses_completed = True

try:
    client.chat.completions.create(model="down-model", messages=messages)
    upstream_down = None
except openai.APIStatusError as e:
    upstream_down = {"status": e.status_code}

fallback = client.chat.completions.create(model="fb-model", messages=messages)

# Take one chunk of a slow stream, then hang up.
abandoned = client.chat.completions.create(model="slow-stream", messages=messages, stream=True)
chunks_taken = 0
for _ in abandoned:
    chunks_taken += 1
    break
abandoned.close()

broken_error = None
try:
    for _ in client.chat.completions.create(model="broken-stream", messages=messages, stream=True):
        pass
except Exception as e:  # the SDK surfaces the aborted stream as an error
    broken_error = type(e).__name__

embedding = client.embeddings.create(model="text-embedding-3-small", input="hello")
model_ids = [m.id for m in client.models.list()]

print(json.dumps({
    "upstream_down": upstream_down,
    "fallback_text": fallback.choices[0].message.content,
    "abandoned_after_chunks": chunks_taken,
    "broken_stream_error": broken_error,
    "responses_text": response.output_text,
    "responses_usage": response.usage.input_tokens if response.usage else None,
    "responses_stream_text": responses_text,
    "responses_stream_completed": responses_completed,
    "embedding": embedding.data[0].embedding,
    "embedding_tokens": embedding.usage.prompt_tokens,
    "model_ids": model_ids,
    "sdk_version": openai.__version__,
    "whole_text": whole.choices[0].message.content,
    "whole_tools": [c.function.name for c in whole.choices[0].message.tool_calls or []],
    "whole_usage": whole.usage.model_dump() if whole.usage else None,
    "streamed_text": streamed_text,
    "streamed_tool_calls": len(streamed_tools),
    "stream_usage_seen_by_client": stream_usage,
    "requested_usage_prompt_tokens": requested_usage,
    "rate_limited": rate_limited,
    "bad_request": bad_request,
}))
