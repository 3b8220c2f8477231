"""Drives Vigil's gateway with the unmodified official Anthropic Python SDK.

Usage: anthropic_sdk.py BASE_URL AGENT_ID
Prints one JSON object summarising what the SDK saw.
"""

import json
import sys

import anthropic

base_url, agent = sys.argv[1], sys.argv[2]
client = anthropic.Anthropic(
    base_url=base_url,
    api_key="sk-ant-client-own-key",
    default_headers={"X-Agent-ID": agent},
    max_retries=0,
)
kwargs = dict(model="claude-sonnet-4-5", max_tokens=64, system="You are terse.",
              messages=[{"role": "user", "content": "Say hello"}])

whole = client.messages.create(**kwargs)

text, tools = "", []
with client.messages.stream(**kwargs) as stream:
    for event in stream:
        if event.type == "content_block_start" and event.content_block.type == "tool_use":
            tools.append(event.content_block.name)
    final = stream.get_final_message()
    text = "".join(b.text for b in final.content if b.type == "text")

print(json.dumps({
    "sdk_version": anthropic.__version__,
    "whole_text": "".join(b.text for b in whole.content if b.type == "text"),
    "whole_tools": [b.name for b in whole.content if b.type == "tool_use"],
    "whole_usage": whole.usage.model_dump(),
    "streamed_text": text,
    "streamed_tools": tools,
    "streamed_output_tokens": final.usage.output_tokens,
}))
