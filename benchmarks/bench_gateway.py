"""Gateway: the latency it adds in front of a replica. Non-streamed completions (p50, p99)
and streaming time to first token, each through the gateway next to the same request sent
to the replica directly, interleaved in the same run; reported as ratios (goal: p99 at most
1.2x direct; reported, not asserted).

Two replicas, each its own process: the reference server (the kit's tiny base on the CPU,
a LoRA revision loaded; the request's own cost is real generation) and a stub replica that
answers at once (a fixed completion; a stream of a few chunks), where what is measured is
the gateway's own overhead. The gateway runs as `python -m services.gateway`.

    .venv/bin/python -m benchmarks.bench_gateway [--requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from benchmarks.common import REPO, Figure, summary_ms, write_report

CLIENT_KEY, ADMIN_KEY = "sk-bench-client", "sk-bench-admin"
LORA = "chat@" + "a" * 16
STUB = "stub@" + "b" * 16
WARMUP = 20
REPLICA = ["-m", "services.reference_server", "--port"]
STUB_REPLICA = ["-m", "benchmarks.bench_gateway", "--stub-replica"]
GATEWAY = ["-m", "services.gateway"]


def port_of(url: str) -> str:
    return url.rsplit(":", 1)[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stub_app() -> FastAPI:
    """A replica that answers at once: what the gateway adds is all there is to measure."""
    app = FastAPI()

    def chunk(kind: str, **fields: Any) -> dict[str, Any]:
        return {"id": "b-1", "object": kind, "created": 1, "model": STUB, **fields}

    async def events() -> AsyncIterator[bytes]:
        for word in ("Once", " upon", " a", " time"):
            choice = {"index": 0, "delta": {"content": word}, "finish_reason": None}
            data = json.dumps(chunk("chat.completion.chunk", choices=[choice]))
            yield f"data: {data}\n\n".encode()
            await asyncio.sleep(0)
        yield b"data: [DONE]\n\n"

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: Request) -> Response:
        body = await request.json()
        if body.get("model") != STUB:  # as vLLM answers a name it does not serve
            error = {"message": f"The model `{body.get('model')}` does not exist.", "code": 404}
            return JSONResponse({"error": {**error, "type": "NotFoundError"}}, 404)
        if body.get("stream"):
            return StreamingResponse(events(), media_type="text/event-stream")
        message = {"role": "assistant", "content": "Once upon a time"}
        choices = [{"index": 0, "message": message, "finish_reason": "stop"}]
        return JSONResponse(chunk("chat.completion", choices=choices))

    return app


@contextmanager
def process(name: str, args: list[str], env: dict[str, str], health: str) -> Iterator[None]:
    log = open(REPO / "benchmarks" / "out" / f"bench_gateway.{name}.log", "w")  # noqa: SIM115
    child = subprocess.Popen(
        [sys.executable, *args], cwd=REPO, env={**os.environ, **env}, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(health, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if child.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{name} did not start: see {log.name}")
            time.sleep(0.2)
        yield
    finally:
        child.terminate()
        child.wait(timeout=20)
        log.close()


def secret(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    path.chmod(0o600)
    return str(path)


def timed(call: Callable[[], None]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def interleaved(
    direct: Callable[[], None], gateway: Callable[[], None], n: int
) -> tuple[list[float], list[float]]:
    """Alternating calls, so drift (the machine, the model's caches) falls on both alike."""
    for _ in range(WARMUP):
        direct(), gateway()
    pairs = [(timed(direct), timed(gateway)) for _ in range(n)]
    return [d for d, _ in pairs], [g for _, g in pairs]


def first_token(
    client: httpx.Client, url: str, body: dict[str, Any], headers: dict[str, str]
) -> Callable[[], None]:
    """A streamed request, timed to its first event; the rest is read untimed."""
    holder: dict[str, float] = {}

    def call() -> None:
        started = time.perf_counter()
        with client.stream("POST", url, json=body, headers=headers) as response:
            lines = response.iter_lines()
            for line in lines:
                if line.startswith("data:"):
                    holder["ttft"] = time.perf_counter() - started
                    break
            for _ in lines:
                pass

    call.holder = holder  # type: ignore[attr-defined]
    return call


def ttft_pairs(
    direct: Callable[[], None], gateway: Callable[[], None], n: int
) -> tuple[list[float], list[float]]:
    for _ in range(WARMUP):
        direct(), gateway()
    d_times, g_times = [], []
    for _ in range(n):
        direct()
        d_times.append(direct.holder["ttft"])  # type: ignore[attr-defined]
        gateway()
        g_times.append(gateway.holder["ttft"])  # type: ignore[attr-defined]
    return d_times, g_times


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_gateway")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--stub-replica", type=int, help=argparse.SUPPRESS)  # its port
    args = parser.parse_args()
    if args.stub_replica:
        import uvicorn

        uvicorn.run(stub_app(), host="127.0.0.1", port=args.stub_replica, log_level="warning")
        return
    from shared.modelkit.cache import kit

    tiny = kit()
    (REPO / "benchmarks" / "out").mkdir(parents=True, exist_ok=True)
    replica, stub, gate, stub_gate = (f"http://127.0.0.1:{free_port()}" for _ in range(4))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        keys = {
            "GATEWAY_ENVIRONMENT": "bench",
            "GATEWAY_BASE_MODEL": tiny.model_ids["main"],
            "GATEWAY_CLIENT_KEYS_FILE": secret(folder, "clients", digest_line(CLIENT_KEY)),
            "GATEWAY_ADMIN_KEY_FILE": secret(folder, "admin", ADMIN_KEY),
        }
        replica_env = {
            "REFERENCE_BASE_FOLDER": str(tiny.base),
            "REFERENCE_BASE_ID": tiny.model_ids["main"],
        }
        with (
            process("replica", [*REPLICA, port_of(replica)], replica_env, f"{replica}/health"),
            process("stub", [*STUB_REPLICA, port_of(stub)], {}, f"{stub}/docs"),
            process(
                "gateway",
                GATEWAY,
                {**keys, "GATEWAY_REPLICAS": replica, "GATEWAY_PORT": port_of(gate)},
                f"{gate}/healthz",
            ),
            process(
                "stub_gateway",
                GATEWAY,
                {**keys, "GATEWAY_REPLICAS": stub, "GATEWAY_PORT": port_of(stub_gate)},
                f"{stub_gate}/healthz",
            ),
        ):
            figures, details = measure(tiny.good, replica, stub, gate, stub_gate, args.requests)
    write_report("gateway", figures, details)


def digest_line(key: str) -> str:
    from services.gateway.keys import digest_of

    return digest_of(key) + "\n"


def measure(
    adapter: Path, replica: str, stub: str, gate: str, stub_gate: str, n: int
) -> tuple[list[Figure], dict[str, Any]]:
    """Each case direct and through its gateway, interleaved; figures and their details."""
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    auth = {"authorization": f"Bearer {CLIENT_KEY}"}
    messages = [{"role": "user", "content": "capital of kenya?"}]
    with httpx.Client(timeout=60) as client:
        loaded = {"lora_name": LORA, "lora_path": str(adapter)}
        client.post(f"{replica}/v1/load_lora_adapter", json=loaded).raise_for_status()
        for front, adapter_name, lora in ((gate, "chat", LORA), (stub_gate, "stub", STUB)):
            active = {"revision": "sha256:" + lora.split("@")[1], "lora_name": lora}
            document = {"generation": 1, "adapters": {adapter_name: {"active": active}}}
            client.post(f"{front}/v1/routing", json=document, headers=admin).raise_for_status()

        def post(url: str, model: str, headers: dict[str, str]) -> Callable[[], None]:
            body = {"model": model, "messages": messages, "max_tokens": 4}

            def call() -> None:
                client.post(
                    f"{url}/v1/chat/completions", json=body, headers=headers
                ).raise_for_status()

            return call

        def stream(url: str, model: str, headers: dict[str, str]) -> Callable[[], None]:
            body = {"model": model, "messages": messages, "max_tokens": 4, "stream": True}
            return first_token(client, f"{url}/v1/chat/completions", body, headers)

        results = {
            "completion, reference replica": interleaved(
                post(replica, LORA, {}), post(gate, "chat", auth), n
            ),
            "completion, stub replica": interleaved(
                post(stub, STUB, {}), post(stub_gate, "stub", auth), n
            ),
            "stream first token, reference replica": ttft_pairs(
                stream(replica, LORA, {}), stream(gate, "chat", auth), n
            ),
            "stream first token, stub replica": ttft_pairs(
                stream(stub, STUB, {}), stream(stub_gate, "stub", auth), n
            ),
        }
    figures, details = [], {}
    for name, (direct, through) in results.items():
        d, g = summary_ms(direct), summary_ms(through)
        details[name] = {
            "direct": d,
            "gateway": g,
            "added_p50_ms": round(g["p50_ms"] - d["p50_ms"], 3),
        }
        for stat in ("p50_ms", "p99_ms"):
            figures.append(
                Figure(
                    name=f"{name}: {stat.removesuffix('_ms')} through the gateway",
                    value=g[stat],
                    baseline=d[stat],
                    unit="ms",
                    baseline_name="direct",
                    higher_is_better=False,
                )
            )
    details["goal"] = "p99 through the gateway <= 1.2x direct (reported, not asserted)"
    details["cpus"] = os.cpu_count()
    return figures, details


if __name__ == "__main__":
    main()
