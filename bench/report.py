"""The benchmark's results as JSON, a Markdown table of ratios to the raw relay, and a plot."""

import json
from pathlib import Path

from bench.client import PACED


def report(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown(results))
    plot(results, out / "tokens.png")
    print((out / "results.md").read_text())


def ratio(value, base) -> str:
    return f"{value} ({value / base:.1f}x)" if value and base else str(value)


def markdown(results: dict) -> str:
    contenders = results["contenders"]
    raw = contenders["raw relay"]
    top = str(max(results["levels"]))
    busy = str(max((level for level in results["levels"] if level <= 100), default=top))

    paced, burst = results["workloads"]["paced"], results["workloads"]["burst"]
    direct = results["direct_ttft_ms"]

    def added_ttft(ttft: dict) -> str:
        def added(key: str) -> float:
            return round(ttft[key] - direct[key], 2)

        return f"{added('p50')} ({added('to_provider')} / {added('after_provider')})"

    lines = [
        f"Paced: streams of {paced['tokens']} tokens, {paced['interval_ms']} ms apart, "
        f"{', '.join(map(str, results['levels']))} at once. Burst: {results['burst_streams']} "
        f"streams of {burst['tokens']} tokens, {burst['interval_ms']} ms apart. The provider's "
        f"own time to first token: {direct['p50']} ms ({direct['to_provider']} ms until the "
        f"request reaches it, {direct['after_provider']} ms from its first token to the client).",
        "",
        f"| contender | CPU µs/token paced @{busy} (vs raw) | CPU µs/token burst (vs raw) | "
        f"tokens/s per core paced @{busy} | inter-token p50 / p99 ms @{top} | "
        f"stalls, errors @{top} | added TTFT ms (to / after provider) | cancel p50 / p99 ms | "
        "cold start s | SIGTERM to exit s | peak RSS MiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, result in contenders.items():
        at_busy, at_top = result["levels"][busy], result["levels"][top]
        cancel = result["cancel_ms"]
        lines.append(
            f"| {name} "
            f"| {ratio(at_busy['cpu_us_per_token'], raw['levels'][busy]['cpu_us_per_token'])} "
            f"| {ratio(result['burst']['cpu_us_per_token'], raw['burst']['cpu_us_per_token'])} "
            f"| {at_busy['tokens_per_cpu_s']} "
            f"| {at_top['gap_p50_ms']} / {at_top['gap_p99_ms']} "
            f"| {at_top['stalls']}, {at_top['errors']} of {at_top['streams']} "
            f"| {added_ttft(result['ttft_ms'])} "
            f"| {cancel['p50']} / {cancel['p99']} "
            f"| {result['cold_start_s']} "
            f"| {result['stop_s'] if result['stop_s'] is not None else 'killed after 30'} "
            f"| {result['peak_rss_mib']} |"
        )
    stops = {name: r["stop_ms"] for name, r in contenders.items() if "stop_ms" in r}
    if stops:
        lines += [
            "",
            "Stopping a resumable answer (`DELETE /api/chat/{id}/stream`, a second client "
            "attached) until the provider sees its connection close:",
            "",
            "| contender | stop p50 / p99 ms | never closed | clients without `abort` |",
            "| --- | --- | --- | --- |",
        ]
        lines += [
            f"| {name} | {stop['p50']} / {stop['p99']} | {stop['never_closed']} "
            f"| {stop['clients_without_abort']} |"
            for name, stop in stops.items()
        ]
    if "page" in results:
        lines += ["", *page_table(results)]
    return "\n".join(lines) + "\n"


def page_table(results: dict) -> list[str]:
    workload, levels = results["workloads"]["page"], results["page"]
    calm = [
        int(n)
        for n, level in levels.items()
        if level["page"]["stalls"] == 0 and level["page"]["complete"] == level["page"]["chats"]
    ]
    lines = [
        "The page's own path (FastAPI bake, `prod --backend-only`, the API mounted in the same "
        f"process): chats through Reflex's websocket, each a {workload['tokens']}-token answer "
        f"at one token every {workload['interval_ms']} ms, the questions spread over 1 s; then "
        "as many API streams of the same on the same server. Largest number of chats with none "
        f"silent for over 1 s: {max(calm, default='none')}.",
        "",
        "| chats at once | page CPU µs/token (vs API route) | websocket bytes/token | "
        "provider's token to socket p50 / p99 ms | first token p50 / max ms | "
        "longest silence ms | chats silent > 1 s | API route CPU µs/token |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for chats, level in levels.items():
        page, api = level["page"], level["api"]
        lines.append(
            f"| {chats} | {ratio(page['cpu_us_per_token'], api['cpu_us_per_token'])} "
            f"| {page['ws_bytes_per_token']} "
            f"| {page['token_to_socket_p50_ms']} / {page['token_to_socket_p99_ms']} "
            f"| {page['first_token_p50_ms']} / {page['first_token_max_ms']} "
            f"| {page['longest_silence_ms']} | {page['stalls']} of {page['chats']} "
            f"| {api['cpu_us_per_token']} |"
        )
    return lines


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 4.5))
    for name, result in results["contenders"].items():
        levels = [int(level) for level in result["levels"]]
        rates = [level["tokens_per_s"] for level in result["levels"].values()]
        axes.plot(levels, rates, marker="o", label=name)
    axes.set_xscale("log")
    axes.set_xlabel("concurrent streams")
    axes.set_ylabel("tokens/s delivered (all streams)")
    axes.set_title(f"{PACED.tokens}-token streams, a token every {PACED.interval_ms} ms per stream")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
