"""Traces and metrics (`telemetry`): the chat core in process with OpenTelemetry's own in-memory
exporters, real LiteLLM and the fake provider; `/api/metrics` (see test_routes.py) scraped by a
real Prometheus where one is installed.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from {{ cookiecutter.package_name }}.errors import ApiError
from {{ cookiecutter.package_name }}.settings import Settings
from {{ cookiecutter.package_name }}.telemetry import CHUNK_SAMPLE, Telemetry

from .conftest import METRICS_TOKEN, PROJECT_DIR, running_api
from .streams import chat_body, post_chat, read_frames
from .support import ThreadedServer, free_port, listening, stop_process_group, wait_until
from .test_routes import answers_counted, scrape
from .test_tools import CALLER, core


class Observed:
    """The spans and metrics the chat core made, as OpenTelemetry's SDK collected them."""

    def __init__(self, capture_content: bool = False) -> None:
        self.spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        meter_provider = MeterProvider(metric_readers=[self.reader])
        self.telemetry = Telemetry(tracer_provider, meter_provider, capture_content)

    def span(self, name: str):
        [span] = [span for span in self.spans.get_finished_spans() if span.name == name]
        return span

    def points(self, name: str) -> list:
        data = self.reader.get_metrics_data()
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]


async def answer(chat_core, model: str, leave_after_chunks: int | None = None):
    body = chat_body(model, "What is 6*7?") | {"id": "conversation-0123456789"}
    frames = await chat_core.open(json.dumps(body).encode(), CALLER)
    try:
        if leave_after_chunks is None:
            return await read_frames(frames)
        for _ in range(leave_after_chunks):
            await anext(frames)
    finally:
        await frames.aclose()


async def test_an_answer_is_a_chat_span_with_the_genai_attributes_and_metrics(upstream):
    observed = Observed()
    stream = await answer(core(upstream, observed=observed.telemetry), "openai/fake-fast")

    span = observed.span("chat fake-fast")
    usage = stream.of_type("finish")[0]["messageMetadata"]["usage"]
    assert dict(span.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "fake-fast",
        "server.address": "127.0.0.1",
        "server.port": upstream.port,
        "gen_ai.conversation.id": "conversation-0123456789",
        "gen_ai.usage.input_tokens": usage["inputTokens"],
        "gen_ai.usage.output_tokens": usage["outputTokens"],
        "gen_ai.response.finish_reasons": ("stop",),
        "chat.outcome": "completed",
    }
    tokens = {
        p.attributes["gen_ai.token.type"]: p.sum
        for p in observed.points("gen_ai.client.token.usage")
    }
    assert tokens == {"input": usage["inputTokens"], "output": usage["outputTokens"]}
    [duration] = observed.points("gen_ai.client.operation.duration")
    [first] = observed.points("gen_ai.client.operation.time_to_first_chunk")
    [between] = observed.points("gen_ai.client.operation.time_per_output_chunk")
    assert (duration.count, first.count) == (1, 1)
    # A sample of the gaps between chunks (CHUNK_SAMPLE): each after the first.
    chunks = len(stream.of_type("text-delta"))
    assert between.count == len(range(CHUNK_SAMPLE, chunks, CHUNK_SAMPLE))
    assert 0 < first.sum < duration.sum
    [completed] = observed.points("chat.answers")
    assert (completed.attributes, completed.value) == ({"outcome": "completed"}, 1)
    [open_streams] = observed.points("chat.streams.open")
    assert open_streams.value == 0


async def test_the_resumable_answers_held_and_their_size_are_reported(upstream):
    observed = Observed()
    chat_core = core(upstream, observed=observed.telemetry)
    body = chat_body("openai/fake-fast") | {"id": "resumable-0123456789", "resumable": True}
    await read_frames(await chat_core.open(json.dumps(body).encode(), CALLER))

    # Kept RESUME_GRACE_S after its end, for a client coming back.
    [held] = observed.points("chat.resumable.answers")
    [size] = observed.points("chat.resumable.size")
    assert held.value == 1
    assert size.value > 0


async def test_a_client_leaving_ends_the_span_as_cancelled_and_times_the_close(upstream):
    observed = Observed()
    await answer(core(upstream, observed=observed.telemetry), "openai/fake-slow", 3)

    assert upstream.last("fake-slow").closed.wait(timeout=5)
    span = observed.span("chat fake-slow")
    assert span.attributes["chat.outcome"] == "cancelled"
    [closing] = observed.points("chat.cancel.duration")
    assert closing.count == 1
    assert 0 < closing.sum < 5


async def test_a_provider_failure_is_an_error_span_and_a_refusal_is_counted(upstream):
    observed = Observed()
    chat_core = core(upstream, observed=observed.telemetry)
    await answer(chat_core, "openai/fake-fail-mid")
    with pytest.raises(ApiError):
        await answer(chat_core, "openai/not-allowed")

    span = observed.span("chat fake-fail-mid")
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes["chat.outcome"], span.attributes["error.type"]) == (
        "error",
        "upstream_error",
    )
    [duration] = observed.points("gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == "upstream_error"
    [refused] = observed.points("chat.refusals")
    assert (refused.attributes, refused.value) == ({"error.type": "model_not_allowed"}, 1)


async def test_a_tool_call_is_an_execute_tool_span_under_the_answer(upstream):
    observed = Observed()
    await answer(core(upstream, observed=observed.telemetry), "openai/fake-tool")

    chat_span = observed.span("chat fake-tool")
    tool_span = observed.span("execute_tool calculate")
    assert tool_span.parent.span_id == chat_span.context.span_id
    assert tool_span.attributes["gen_ai.tool.name"] == "calculate"
    assert tool_span.attributes["gen_ai.tool.call.id"].startswith("call_")
    assert "gen_ai.tool.call.arguments" not in tool_span.attributes
    assert "gen_ai.input.messages" not in chat_span.attributes


async def test_messages_and_tool_arguments_go_into_spans_only_when_asked(upstream):
    observed = Observed(capture_content=True)
    stream = await answer(core(upstream, observed=observed.telemetry), "openai/fake-tool")

    chat_span = observed.span("chat fake-tool")
    assert "What is 6*7?" in chat_span.attributes["gen_ai.input.messages"]
    output = json.loads(chat_span.attributes["gen_ai.output.messages"])
    assert output[0]["parts"][0]["content"] == stream.text
    tool_span = observed.span("execute_tool calculate")
    assert json.loads(tool_span.attributes["gen_ai.tool.call.arguments"]) == {"expression": "6*7"}
    assert tool_span.attributes["gen_ai.tool.call.result"] == "42"


class Collector:
    """An OTLP/HTTP collector on loopback that keeps the spans exported to it."""

    def __init__(self) -> None:
        self.spans: list = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        route = Route("/v1/{signal}", self._export, methods=["POST"])
        self._server = ThreadedServer(Starlette(routes=[route]), self.port, "critical")

    async def _export(self, request: Request) -> Response:
        if request.path_params["signal"] == "traces":
            exported = ExportTraceServiceRequest.FromString(await request.body())
            for resource in exported.resource_spans:
                for scope in resource.scope_spans:
                    self.spans += scope.spans
        return Response(b"", media_type="application/x-protobuf")

    def __enter__(self) -> "Collector":
        self._server.start("the collector listens")
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.stop()


def test_an_answer_over_http_is_one_trace_the_route_then_the_chat_span(upstream, tmp_path):
    with (
        Collector() as collector,
        running_api(
            upstream,
            tmp_path,
            otel_exporter_otlp_endpoint=collector.url,
            otel_bsp_schedule_delay="100",
        ) as api,
    ):
        post_chat(api.url, "openai/fake-slow")

        def the_trace() -> list | None:
            """The answer's trace, once its root (the route's span) is in."""
            chat = next((s for s in collector.spans if s.name == "chat fake-slow"), None)
            spans = [s for s in collector.spans if chat and s.trace_id == chat.trace_id]
            return spans if any(not s.parent_span_id for s in spans) else None

        spans = wait_until(the_trace, "the answer's trace is exported", 10)
    by_id = {span.span_id: span for span in spans}
    chat = next(span for span in spans if span.name == "chat fake-slow")
    root = chat
    while root.parent_span_id:
        root = by_id[root.parent_span_id]
    assert root.name == "POST /api/chat"
    # A few: the route's and its framework's, not one more for each of the 40 chunks sent.
    assert len(spans) < 10, [span.name for span in spans]


def test_metrics_are_off_without_their_token():
    from {{ cookiecutter.package_name }}.chat import Chat

    with pytest.raises(ApiError) as off:
        Chat(Settings(redis_url=None)).metrics(None)
    assert off.value.status == 404


def every_kind_of_answer(api: str) -> None:
    """One answer, one refusal and one cancelled answer: each metric has its series."""
    post_chat(api, "openai/fake-fast")
    assert httpx.post(f"{api}/api/chat", json=chat_body("openai/not-allowed")).status_code == 400
    body = chat_body("openai/fake-slow")
    with httpx.stream("POST", f"{api}/api/chat", json=body, timeout=30) as response:
        next(response.iter_lines())  # then it hangs up


@pytest.mark.skipif(not shutil.which("prometheus"), reason="needs prometheus (Debian's)")
def test_a_real_prometheus_scrapes_the_app_and_the_dashboards_queries_work(api, tmp_path):
    every_kind_of_answer(api)
    dashboard = json.loads((PROJECT_DIR / "deploy" / "grafana" / "chat.json").read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    served = {name for name, _ in scrape(api)}
    for query in queries:  # the dashboard asks for metrics the app serves (not label names)
        assert set(re.findall(r"\b(?:gen_ai|chat)_[a-z_]+\b(?!\s*!?=)", query)) <= served, query

    prometheus = real_prometheus(api, tmp_path)
    try:
        port = prometheus.args[-1].rsplit(":", 1)[1]
        query_url = f"http://127.0.0.1:{port}/api/v1/query"
        expected = answers_counted(scrape(api), "completed")

        def counted() -> float | None:
            promql = 'sum(chat_answers_total{outcome="completed"})'
            result = httpx.get(query_url, params={"query": promql}).json()["data"]["result"]
            return float(result[0]["value"][1]) if result else None

        wait_until(lambda: counted() == expected, "Prometheus has the count", 30, prometheus)
        for query in queries:
            answer = httpx.get(query_url, params={"query": query}).json()
            assert answer["status"] == "success", (query, answer)
    finally:
        stop_process_group(prometheus)


def real_prometheus(api: str, folder: Path) -> subprocess.Popen:
    """Debian's prometheus, scraping the API's metrics every second with their token, as
    deploy/prometheus.yml does in compose; listening once this returns."""
    config = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "app",
                "metrics_path": "/api/metrics",
                "authorization": {"credentials": METRICS_TOKEN},
                "static_configs": [{"targets": [api.removeprefix("http://")]}],
            }
        ],
    }
    (folder / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    port = free_port()
    command = [
        "prometheus",
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with (folder / "prometheus.log").open("w") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    wait_until(lambda: listening(port), "prometheus listens", 30, process)
    return process
