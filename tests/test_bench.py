"""The benchmark's smoke run: `python -m bench.run --smoke` measures the raw relay and a FastAPI
bake side by side and reports every figure, so the full run (minutes) keeps working."""

import json
import subprocess
import sys

from .conftest import TEMPLATE_DIR


def test_bench_smoke_run_measures_every_figure(tmp_path):
    command = [sys.executable, "-m", "bench.run", "--smoke", "--out", str(tmp_path)]
    done = subprocess.run(command, cwd=TEMPLATE_DIR, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    print(done.stdout)  # the table, in the CI log

    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["contenders"]) == {"raw relay", "fastapi"}
    for contender in results["contenders"].values():
        assert contender["cancel_ms"]["never_closed"] == 0
        assert contender["cancel_ms"]["finished_anyway"] == 0
        for level in [*contender["levels"].values(), contender["burst"]]:
            assert level["complete"] == level["streams"], level
            assert level["cpu_us_per_token"] > 0
        # the provider saw each request before its first token reached the client
        assert 0 < contender["ttft_ms"]["to_provider"] < contender["ttft_ms"]["p50"]
        assert 0 < contender["ttft_ms"]["after_provider"] < contender["ttft_ms"]["p50"]
    for level in results["page"].values():  # the page's path, through Reflex's websocket
        assert level["page"]["complete"] == level["page"]["chats"], level
        assert level["page"]["ws_bytes_per_token"] > 0
        assert level["page"]["token_to_socket_p50_ms"] > 0
    table = (tmp_path / "results.md").read_text()
    assert "\n| raw relay | " in table and "\n| fastapi | " in table
    assert (tmp_path / "tokens.png").stat().st_size > 10_000
