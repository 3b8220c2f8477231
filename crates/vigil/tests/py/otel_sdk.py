"""Exports GenAI spans to Vigil's OTLP/HTTP receiver with the unmodified official
OpenTelemetry Python SDK (protobuf, gzip, an API key header).

Usage: otel_sdk.py BASE_URL API_KEY
Prints one JSON object with what was sent; exits non-zero if an export failed.
"""

import json
import sys

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.trace import Status, StatusCode

base_url, api_key = sys.argv[1], sys.argv[2]
results = []


class Recording(OTLPSpanExporter):
    def export(self, spans):
        result = super().export(spans)
        results.append(result == SpanExportResult.SUCCESS)
        return result


exporter = Recording(endpoint=f"{base_url}/v1/traces", headers={"x-api-key": api_key}, compression=Compression.Gzip)
provider = TracerProvider(resource=Resource.create({"service.name": "otel-agent"}))
provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=16))
tracer = provider.get_tracer("vigil.test", "1.0")

for i in range(30):
    with tracer.start_as_current_span("chat gpt-4o") as span:
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.provider.name", "openai")
        span.set_attribute("gen_ai.request.model", "gpt-4o")
        span.set_attribute("gen_ai.response.model", "gpt-4o-2024-08-06")
        span.set_attribute("gen_ai.usage.input_tokens", 100 + i % 5)
        span.set_attribute("gen_ai.usage.output_tokens", 20 + i % 3)
        span.set_attribute("gen_ai.response.finish_reasons", ["stop"])

# The deprecated names of older instrumentations.
with tracer.start_as_current_span("chat claude-sonnet-4") as span:
    span.set_attribute("gen_ai.system", "anthropic")
    span.set_attribute("gen_ai.request.model", "claude-sonnet-4")
    span.set_attribute("gen_ai.usage.prompt_tokens", 101)
    span.set_attribute("gen_ai.usage.completion_tokens", 21)

# A failed call, and a tool span (not a model call).
with tracer.start_as_current_span("chat gpt-4o") as span:
    span.set_attribute("gen_ai.operation.name", "chat")
    span.set_attribute("gen_ai.request.model", "gpt-4o")
    span.set_attribute("error.type", "rate_limit")
    span.set_status(Status(StatusCode.ERROR, "429 from the provider"))
with tracer.start_as_current_span("execute_tool search") as span:
    span.set_attribute("gen_ai.operation.name", "execute_tool")
    span.set_attribute("gen_ai.tool.name", "search")

provider.force_flush()
provider.shutdown()
print(json.dumps({"exports": len(results), "all_succeeded": all(results)}))
sys.exit(0 if results and all(results) else 1)
