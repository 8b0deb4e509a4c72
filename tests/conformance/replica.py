"""A vLLM replica without a GPU: vLLM's own `vllm serve` HTTP layer over a stub engine.

`python -m tests.conformance.replica --port-file F -- <vllm serve arguments>` parses the
arguments with vLLM's own parser and runs what `vllm.entrypoints.openai.api_server.run_server`
runs (`setup_server`, `build_app`, `init_app_state`, `serve_http`, through `build_and_serve`),
except that the engine is `StubEngine` instead of `build_async_engine_client`'s AsyncLLM.
Every route, middleware, exception handler and the serving classes behind them are vLLM's;
only what the engine core would do on a GPU (load a LoRA's weights, generate) is stubbed, the
way vLLM's own entrypoint tests stub it. `VLLM_ALLOW_RUNTIME_LORA_UPDATING` is read from the
environment, as `vllm serve` reads it. The bound port is written to the port file.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

# Before anything asks vLLM which platform it runs on: the CUDA wheel finds no GPU here, and
# its argument parser's defaults need a device. The engine is stubbed, so no kernel runs.
import vllm.platforms
from vllm.platforms.cpu import CpuPlatform

vllm.platforms._current_platform = CpuPlatform()

from vllm.engine.arg_utils import AsyncEngineArgs  # noqa: E402
from vllm.entrypoints.openai import api_server  # noqa: E402
from vllm.entrypoints.openai.cli_args import (  # noqa: E402
    make_arg_parser,
    validate_parsed_serve_args,
)
from vllm.exceptions import LoRAAdapterNotFoundError  # noqa: E402
from vllm.lora.peft_helper import PEFTHelper  # noqa: E402
from vllm.lora.request import LoRARequest  # noqa: E402
from vllm.lora.utils import get_adapter_absolute_path  # noqa: E402
from vllm.outputs import CompletionOutput, RequestOutput  # noqa: E402
from vllm.renderers import renderer_from_config  # noqa: E402
from vllm.utils.argparse_utils import FlexibleArgumentParser  # noqa: E402
from vllm.v1.engine.input_processor import InputProcessor  # noqa: E402

REPLY = " pong"  # what the stub engine generates, one token


class StubEngine:
    """The engine client vLLM's API server talks to, minus the GPU: the config, renderer and
    input processor are vLLM's, built from the served folder's config.json and tokenizer;
    `add_lora` checks the adapter's config as vLLM's LoRA worker does and keeps it in a dict
    (no tensors are read), and `generate` answers one token."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.vllm_config = AsyncEngineArgs.from_cli_args(args).create_engine_config()
        self.model_config = self.vllm_config.model_config
        self.renderer = renderer_from_config(self.vllm_config)
        self.input_processor = InputProcessor(self.vllm_config, self.renderer)
        self.loras: dict[int, LoRARequest] = {}
        self.is_running = True
        self.is_stopped = False
        self.errored = False
        self.dead_error: BaseException = RuntimeError("the stub engine never dies")

    async def get_supported_tasks(self) -> tuple[str, ...]:
        return ("generate",)

    async def add_lora(self, lora_request: LoRARequest) -> bool:
        """The engine core's answer to a load: `WorkerLoRAManager._load_adapter`'s checks
        (vllm/lora/worker_manager.py: read `adapter_config.json`, check it against
        `--max-lora-rank` and friends, a missing folder as LoRAAdapterNotFoundError; no tensors
        are read), with any failure crossing the process boundary as `vllm serve`'s engine
        core client delivers it: a plain Exception carrying the message (v1/engine/core.py
        `_invoke_utility_method`, v1/engine/core_client.py `_process_utility_output`)."""
        try:
            self._check_adapter(lora_request)
        except Exception as exc:
            raise Exception(f"Call to add_lora method failed: {exc}") from None
        self.loras[lora_request.lora_int_id] = lora_request
        return True

    def _check_adapter(self, lora_request: LoRARequest) -> None:
        try:
            peft = PEFTHelper.from_local_dir(
                get_adapter_absolute_path(lora_request.lora_path),
                self.model_config.max_model_len,
            )
        except FileNotFoundError as exc:
            name, path = lora_request.lora_name, lora_request.lora_path
            raise LoRAAdapterNotFoundError(name, path) from exc
        assert self.vllm_config.lora_config is not None, "start the replica with --enable-lora"
        peft.validate_legal(self.vllm_config.lora_config)

    async def remove_lora(self, lora_id: int) -> bool:
        return self.loras.pop(lora_id, None) is not None

    async def list_loras(self) -> set[int]:
        return set(self.loras)

    async def generate(
        self, prompt: Any, sampling_params: Any, request_id: str, **kwargs: Any
    ) -> AsyncGenerator[RequestOutput, None]:
        lora_request = kwargs.get("lora_request")
        token_ids = self.renderer.tokenizer.encode(REPLY, add_special_tokens=False)[:1]
        yield RequestOutput(
            request_id=request_id,
            prompt=None,
            prompt_token_ids=list(prompt.get("prompt_token_ids") or []),
            prompt_logprobs=None,
            outputs=[
                CompletionOutput(
                    index=0,
                    text=REPLY,
                    token_ids=token_ids,
                    cumulative_logprob=None,
                    logprobs=None,
                    finish_reason="length",
                    lora_request=lora_request,
                )
            ],
            finished=True,
            lora_request=lora_request,
        )

    async def abort(self, request_id: Any) -> None:
        return None

    async def check_health(self) -> None:
        return None

    async def do_log_stats(self) -> None:
        return None

    async def is_tracing_enabled(self) -> bool:
        return False

    async def is_sleeping(self) -> bool:
        return False

    async def is_paused(self) -> bool:
        return False

    def shutdown(self, timeout: float | None = None) -> None:
        self.is_running = False
        self.is_stopped = True


async def serve(args: argparse.Namespace, port_file: Path) -> None:
    """`api_server.run_server`, with the stub engine in place of AsyncLLM."""
    listen_address, sock = api_server.setup_server(args)
    port_file.write_text(str(sock.getsockname()[1]))  # bound: callers wait for /health
    engine = StubEngine(args)
    shutdown_task = await api_server.build_and_serve(engine, listen_address, sock, args)
    try:
        await shutdown_task
    finally:
        sock.close()


def main(argv: list[str]) -> None:
    ours = argparse.ArgumentParser(description=__doc__)
    ours.add_argument("--port-file", type=Path, required=True)
    ours.add_argument("vllm_args", nargs=argparse.REMAINDER)
    options = ours.parse_args(argv)
    vllm_args = options.vllm_args[1:] if options.vllm_args[:1] == ["--"] else options.vllm_args
    args = make_arg_parser(FlexibleArgumentParser()).parse_args(vllm_args)
    validate_parsed_serve_args(args)
    asyncio.run(serve(args, options.port_file))


if __name__ == "__main__":
    main(sys.argv[1:])
