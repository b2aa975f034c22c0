"""What the app is doing, for whoever runs it: OpenTelemetry traces and metrics.

Both are off unless asked for, and then cost next to nothing: the instruments are
OpenTelemetry's no-op ones, and no provider, exporter or thread is made.

- **Traces**, with `OTEL_EXPORTER_OTLP_ENDPOINT`: each answer is a `chat {model}` span with the
  GenAI semantic conventions' attributes, under the HTTP route's span (or the page's), with an
  `execute_tool {name}` span per tool call. Messages only with
  `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`.
- **Metrics**, with `METRICS_TOKEN` (served at `/api/metrics` in Prometheus's format) or the
  OTLP endpoint (exported every `OTEL_METRIC_EXPORT_INTERVAL`): the GenAI client metrics, and
  the app's own (`chat.*`).

Each process keeps its own, built on its first use: `prod`'s workers are forked after import.
"""

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation

from . import llm
from .settings import Settings

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from .chat import AccessRecord

# The GenAI conventions' bucket boundaries (seconds; tokens).
DURATION_BUCKETS = [0.01 * 2**n for n in range(14)]  # 0.01 s to 81.92 s
CHUNK_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5]
TOKEN_BUCKETS = [4**n for n in range(14)]  # 1 to 67,108,864
# One chunk in this many has its time since the one before recorded: the SDK takes 7 to 11 µs
# per measurement, as much as 10 % of what streaming a token costs (bench/telemetry.py). A
# sample keeps the distribution's quantiles; its count is not the number of chunks.
CHUNK_SAMPLE = 16
# LiteLLM's provider prefixes that the conventions name otherwise.
PROVIDER_NAMES = {
    "azure": "azure.ai.openai",
    "bedrock": "aws.bedrock",
    "gemini": "gcp.gemini",
    "mistral": "mistral_ai",
    "vertex_ai": "gcp.vertex_ai",
    "xai": "x_ai",
}
# Outcomes of the access log that are failures of the answer (its span's status is ERROR).
FAILED = {"error", "cut_off", "aborted"}


def model_attributes(model: str, api_base: str | None) -> dict[str, Any]:
    """The conventions' attributes of a LiteLLM model string: `anthropic/claude-x` is model
    `claude-x` of provider `anthropic` (a bare name, LiteLLM's guess), at `api_base` if set."""
    provider, _, name = model.partition("/") if "/" in model else ("", "", model)
    if not provider:
        try:
            provider = llm.litellm().get_llm_provider(model)[1]
        except Exception:  # a name LiteLLM does not know: answering will say so
            provider = "unknown"
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": PROVIDER_NAMES.get(provider, provider),
        "gen_ai.request.model": name,
    }
    if api_base and (address := urlsplit(api_base)).hostname:
        attributes["server.address"] = address.hostname
        attributes["server.port"] = address.port or (443 if address.scheme == "https" else 80)
    return attributes


def as_parts(messages: list[dict]) -> tuple[list[dict], list[dict]]:
    """Chat messages in the conventions' form (`gen_ai.input.messages`), files named but not
    copied; and the system instructions apart (`gen_ai.system_instructions`)."""
    instructions: list[dict] = []
    converted = []
    for message in messages:
        if message["role"] == "system":
            instructions += _parts(message)
        else:
            converted.append({"role": message["role"], "parts": _parts(message)})
    return converted, instructions


def _parts(message: dict) -> list[dict]:
    if message["role"] == "tool":
        response = message["content"]
        return [{"type": "tool_call_response", "id": message["tool_call_id"], "response": response}]
    content = message.get("content")
    if isinstance(content, str):
        parts = [{"type": "text", "content": content}]
    else:
        parts = [
            {"type": "text", "content": part["text"]}
            if part.get("type") == "text"
            else {"type": "blob", "modality": part.get("type", "file")}  # not its data
            for part in content or []
        ]
    for call in message.get("tool_calls") or []:
        name, arguments = call["function"]["name"], call["function"]["arguments"]
        parts.append({"type": "tool_call", "id": call["id"], "name": name, "arguments": arguments})
    return parts


class Telemetry:
    """The app's tracer and instruments, from the providers it is given."""

    def __init__(
        self,
        tracer_provider: trace.TracerProvider,
        meter_provider: metrics.MeterProvider,
        capture_content: bool = False,
        registry: "CollectorRegistry | None" = None,
    ) -> None:
        """`registry`: where the metrics are read for Prometheus (`/api/metrics`), if they are."""
        self.tracer_provider = tracer_provider
        self.registry = registry
        self.meter_provider = meter_provider
        self.tracer = tracer_provider.get_tracer(__package__)
        self.capture_content = capture_content
        meter = meter_provider.get_meter(__package__)

        def seconds(name: str, description: str, buckets: list[float] = DURATION_BUCKETS):
            return meter.create_histogram(
                name, "s", description, explicit_bucket_boundaries_advisory=buckets
            )

        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Tokens used by an answer, by gen_ai.token.type (input, output).",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self.duration = seconds(
            "gen_ai.client.operation.duration",
            "An answer's whole time, from the request to its end.",
        )
        self.time_to_first_chunk = seconds(
            "gen_ai.client.operation.time_to_first_chunk",
            "From a request to the model to its first output.",
        )
        self.time_per_output_chunk = seconds(
            "gen_ai.client.operation.time_per_output_chunk",
            f"Between two chunks of the model's output (one chunk in {CHUNK_SAMPLE}).",
            CHUNK_BUCKETS,
        )
        self.streams_open = meter.create_up_down_counter(
            "chat.streams.open", unit="{stream}", description="Answers streaming now."
        )
        self.answers = meter.create_counter(
            "chat.answers", unit="{answer}", description="Answers, by how they ended (outcome)."
        )
        self.refusals = meter.create_counter(
            "chat.refusals",
            unit="{request}",
            description="Requests refused before an answer began, by error.type.",
        )
        self.cancel_duration = seconds(
            "chat.cancel.duration",
            "From the client gone (or Stop) to the provider's connection closed.",
        )
        self._meter = meter
        self._held: list[Callable[[], tuple[int, int]]] = []

    def watch_resumable(self, held: Callable[[], tuple[int, int]]) -> None:
        """Report the resumable answers held, and their bytes, as `held` counts them (summed
        over the chat cores of the process: the page's and the API's)."""
        if held in self._held:  # a core asked twice (two threads, the first time)
            return
        if not self._held:

            def answers(_: CallbackOptions) -> list[Observation]:
                return [Observation(sum(count()[0] for count in self._held))]

            def kept_bytes(_: CallbackOptions) -> list[Observation]:
                return [Observation(sum(count()[1] for count in self._held))]

            self._meter.create_observable_gauge(
                "chat.resumable.answers", [answers], unit="{answer}", description="Answers held."
            )
            self._meter.create_observable_gauge(
                "chat.resumable.size", [kept_bytes], unit="By", description="Their bytes, held."
            )
        self._held.append(held)

    def answer(
        self, attributes: dict[str, Any], conversation_id: str | None, messages: list[dict]
    ) -> "Answer":
        """An answer to `messages` begins (`attributes`: `model_attributes`)."""
        return Answer(self, attributes, conversation_id, messages)

    def refused(self, error_type: str) -> None:
        self.refusals.add(1, {"error.type": error_type})


class Answer:
    """One answer's span and measurements, from the provider call to its end."""

    def __init__(
        self,
        telemetry: Telemetry,
        attributes: dict[str, Any],
        conversation_id: str | None,
        messages: list[dict],
    ) -> None:
        self._telemetry = telemetry
        self.attributes = attributes
        span_attributes = dict(attributes)
        if conversation_id:
            span_attributes["gen_ai.conversation.id"] = conversation_id
        name = f"chat {attributes['gen_ai.request.model']}"
        self.span = telemetry.tracer.start_span(
            name, kind=trace.SpanKind.CLIENT, attributes=span_attributes
        )
        if telemetry.capture_content and self.span.is_recording():
            inputs, instructions = as_parts(messages)
            self.span.set_attribute("gen_ai.input.messages", json.dumps(inputs))
            if instructions:
                self.span.set_attribute("gen_ai.system_instructions", json.dumps(instructions))
        self.started = time.perf_counter()  # the access log's times count from here too
        self._asked = self.started  # the model's last request
        self._last_chunk: float | None = None
        self._chunks = 0
        self._text: list[str] = []
        self._cancelled_at: float | None = None
        telemetry.streams_open.add(1)

    @property
    def capture_content(self) -> bool:
        return self._telemetry.capture_content

    def asked(self) -> None:
        """The model is asked (again, after tools ran): its first chunk is timed from here."""
        self._asked, self._last_chunk = time.perf_counter(), None

    def output(self, text: str = "") -> None:
        """A chunk of the model's output (text, reasoning, a tool call's start)."""
        now = time.perf_counter()
        if self._last_chunk is None:
            self._telemetry.time_to_first_chunk.record(now - self._asked, self.attributes)
        elif self._chunks % CHUNK_SAMPLE == 0:
            self._telemetry.time_per_output_chunk.record(now - self._last_chunk, self.attributes)
        self._last_chunk = now
        self._chunks += 1
        if text and self._telemetry.capture_content and self.span.is_recording():
            self._text.append(text)

    def cancelled(self) -> None:
        """The client went away or Stop was asked: the provider's connection closes next."""
        self._cancelled_at = time.perf_counter()

    @contextmanager
    def tool(self, name: str, call_id: str, arguments: str) -> Iterator[trace.Span]:
        """An `execute_tool` span around a call, under the answer's."""
        attributes = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.call.id": call_id,
            "gen_ai.tool.type": "function",
        }
        if self._telemetry.capture_content:
            attributes["gen_ai.tool.call.arguments"] = arguments
        within = trace.set_span_in_context(self.span)
        with self._telemetry.tracer.start_as_current_span(
            f"execute_tool {name}", context=within, attributes=attributes
        ) as span:
            yield span

    def end(self, record: "AccessRecord") -> None:
        """Once the provider's connection is closed: the span ends and the answer is counted."""
        telemetry, now = self._telemetry, time.perf_counter()
        telemetry.streams_open.add(-1)
        if self._cancelled_at is not None:
            telemetry.cancel_duration.record(now - self._cancelled_at)
        telemetry.answers.add(1, {"outcome": record.outcome})
        attributes = dict(self.attributes)
        if error_type := _error_type(record):
            attributes["error.type"] = error_type
        telemetry.duration.record(now - self.started, attributes)
        for kind, tokens in (("input", record.input_tokens), ("output", record.output_tokens)):
            if tokens is not None:
                telemetry.token_usage.record(tokens, {**self.attributes, "gen_ai.token.type": kind})
        self._close_span(record)

    def _close_span(self, record: "AccessRecord") -> None:
        span = self.span
        span.set_attribute("chat.outcome", record.outcome)
        if record.finish_reason:
            span.set_attribute("gen_ai.response.finish_reasons", [record.finish_reason])
        if record.input_tokens is not None:
            span.set_attribute("gen_ai.usage.input_tokens", record.input_tokens)
        if record.output_tokens is not None:
            span.set_attribute("gen_ai.usage.output_tokens", record.output_tokens)
        if self._text:
            text = {"type": "text", "content": "".join(self._text)}
            output = {"role": "assistant", "parts": [text]}
            if record.finish_reason:
                output["finish_reason"] = record.finish_reason
            span.set_attribute("gen_ai.output.messages", json.dumps([output]))
        if error_type := _error_type(record):
            span.set_attribute("error.type", error_type)
            span.set_status(trace.StatusCode.ERROR)
        span.end()


def _error_type(record: "AccessRecord") -> str | None:
    """What failed, for an answer that did: the error's type, or how it ended (cut_off)."""
    return (record.error_type or record.outcome) if record.outcome in FAILED else None


def off() -> Telemetry:
    """Instruments that do nothing."""
    return Telemetry(trace.NoOpTracerProvider(), metrics.NoOpMeterProvider())


_by_process: dict[int, Telemetry] = {}
_building = threading.Lock()


def for_process(settings: Settings) -> Telemetry:
    """This process's telemetry as the settings ask for it, built on first use."""
    if (built := _by_process.get(os.getpid())) is not None:
        return built
    with _building:
        if os.getpid() not in _by_process:
            _by_process[os.getpid()] = _build(settings)
        return _by_process[os.getpid()]


def _build(settings: Settings) -> Telemetry:
    endpoint = settings.otel_exporter_otlp_endpoint
    if not (endpoint or settings.metrics_token):
        return off()
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create(
        {"service.name": settings.otel_service_name, "service.instance.id": str(uuid.uuid4())}
    )
    readers: list = []
    registry = None
    if settings.metrics_token:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry, ProcessCollector

        registry = CollectorRegistry()
        ProcessCollector(registry=registry)  # the process's CPU, memory and open files
        readers.append(PrometheusMetricReader(registry=registry))
    tracer_provider: trace.TracerProvider = trace.NoOpTracerProvider()
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        base = endpoint.rstrip("/")
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(f"{base}/v1/metrics")))
        sdk_tracer_provider = TracerProvider(resource=resource)
        spans = BatchSpanProcessor(OTLPSpanExporter(f"{base}/v1/traces"))
        sdk_tracer_provider.add_span_processor(spans)
        tracer_provider = sdk_tracer_provider
        # The routes' spans (OpenTelemetry's ASGI and WSGI middleware) use the global one.
        trace.set_tracer_provider(tracer_provider)
    meter_provider = MeterProvider(metric_readers=readers, resource=resource)
    metrics.set_meter_provider(meter_provider)  # the middleware's http.server.* metrics too
    content = settings.otel_instrumentation_genai_capture_message_content
    return Telemetry(tracer_provider, meter_provider, content, registry)


def flush_all() -> None:
    """Send what this process still buffers: servers call it as they stop (see
    `mcp_tools.close_all`). Another pid's are a forked parent's copies: not ours to end."""
    if (telemetry := _by_process.pop(os.getpid(), None)) is not None:
        for provider in (telemetry.tracer_provider, telemetry.meter_provider):
            if shutdown := getattr(provider, "shutdown", None):
                shutdown()
