"""`adapterctl base ...` and `adapterctl env ...`: the catalogues adapters are checked against,
and `submit`'s pre-flight check of a submission against them."""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from adapterctl.output import emit, table, to_json
from adapterctl.source import CliError, Source, with_registry
from shared.catalogue import EnvironmentSpec
from shared.events import AdapterTrained
from shared.hf_folder import describe_base_model
from shared.modelkit.digests import digest_folder
from shared.registry.catalogue_store import PostgresCatalogue

T = TypeVar("T")

BASE_EPILOG = """\
examples:
  adapterctl base register ./models/tiny-llama --id tiny-llama --tokenizer-revision tok-1
  adapterctl base list --json"""

ENV_EPILOG = """\
examples:
  adapterctl env set production --base tiny-llama@sha256:ab12... --max-lora-rank 16 \\
      --required-approvals 2 --canary-steps 10,50,100
  adapterctl env list"""


def with_catalogue(source: Source, work: Callable[[PostgresCatalogue], Awaitable[T]]) -> T:
    """Run `work` against the registry's catalogue (migrating it first), or a CliError."""
    return with_registry(source, lambda pool: work(PostgresCatalogue(pool)))


def run_base_register(args: argparse.Namespace, source: Source) -> int:
    folder = Path(args.folder)
    if not (folder / "config.json").is_file():
        raise CliError(f"{folder} has no config.json: pass a Hugging Face model folder")
    spec = describe_base_model(
        folder,
        model_id=args.id,
        revision=args.revision or digest_folder(folder),
        tokenizer_revision=args.tokenizer_revision,
    )
    try:
        with_catalogue(source, lambda c: c.put_base_model(spec))
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        emit(to_json(spec))
    else:
        emit(f"registered base model {spec.model_id}@{spec.revision}")
        emit(f"  {len(spec.modules)} linear modules, vocab {spec.vocab_size}")
        emit(f"  tokenizer {spec.tokenizer_hash}\n  chat template {spec.chat_template_hash}")
    return 0


def run_base_list(args: argparse.Namespace, source: Source) -> int:
    bases = with_catalogue(source, lambda c: c.base_models())
    if args.json:
        emit(to_json(bases))
    else:
        rows = [
            (b.model_id, b.revision, b.architecture, len(b.modules), b.tokenizer_revision)
            for b in bases
        ]
        emit(table(["model", "revision", "architecture", "modules", "tokenizer"], rows))
    return 0


def run_env_set(args: argparse.Namespace, source: Source) -> int:
    model_id, _, revision = args.base.partition("@")
    if not revision:
        raise CliError(f"--base {args.base!r}: give MODEL@REVISION (see `adapterctl base list`)")

    async def work(catalogue: PostgresCatalogue) -> EnvironmentSpec:
        base = await catalogue.base_model(model_id, revision)
        if base is None:
            raise CliError(
                f"base model {args.base} is not registered: `adapterctl base register` it first"
            )
        spec = EnvironmentSpec(
            name=args.name,
            base_model_id=model_id,
            base_model_revision=revision,
            tokenizer_hash=base.tokenizer_hash,
            chat_template_hash=base.chat_template_hash,
            quantization_profile=args.quantization,
            max_lora_rank=args.max_lora_rank,
            max_loras=args.max_loras,
            supported_target_modules=tuple(args.target_modules.split(",")),
            allow_modules_to_save=args.allow_modules_to_save,
            required_approvals=args.required_approvals,
            approver_may_operate=not args.separate_approver_and_operator,
            canary_steps=tuple(int(s) for s in args.canary_steps.split(",") if s),
            max_model_len=args.max_model_len,
            allow_unproven_replica_base=args.allow_unproven_replica_base,
            gateways=tuple(url.rstrip("/") for url in args.gateway),
        )
        await catalogue.put_environment(spec)
        return spec

    spec = with_catalogue(source, work)
    emit(to_json(spec) if args.json else f"environment {spec.name} set")
    return 0


def run_env_list(args: argparse.Namespace, source: Source) -> int:
    envs = with_catalogue(source, lambda c: c.environments())
    if args.json:
        emit(to_json(envs))
    else:
        rows = [
            (
                e.name,
                f"{e.base_model_id}@{e.base_model_revision[:19]}",
                e.quantization_profile,
                e.max_lora_rank,
                e.required_approvals,
                ",".join(map(str, e.canary_steps)),
            )
            for e in envs
        ]
        emit(table(["environment", "base", "quant", "max rank", "approvals", "canary"], rows))
    return 0


def register(groups: Any, common: argparse.ArgumentParser) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    base = groups.add_parser(
        "base", help="register and list base models", epilog=BASE_EPILOG, formatter_class=fmt
    )
    base_cmds = base.add_subparsers(dest="command", metavar="COMMAND", required=True)
    reg = base_cmds.add_parser(
        "register",
        parents=[common],
        help="describe a model folder and register it",
        description="Reads config.json, the weights' safetensors headers (never the weights), "
        "the tokenizer and the chat template, and registers the base model revision.",
        epilog=BASE_EPILOG,
        formatter_class=fmt,
    )
    reg.add_argument("folder", help="a Hugging Face model folder")
    reg.add_argument("--id", required=True, help="the base model's id, e.g. tiny-llama")
    reg.add_argument(
        "--revision", default=None, help="its revision (default: the digest of its files)"
    )
    reg.add_argument("--tokenizer-revision", required=True, help="the tokenizer's revision")
    reg.set_defaults(run=run_base_register)
    lst = base_cmds.add_parser(
        "list",
        parents=[common],
        help="list registered base models",
        epilog=BASE_EPILOG,
        formatter_class=fmt,
    )
    lst.set_defaults(run=run_base_list)

    env = groups.add_parser(
        "env", help="set and list serving environments", epilog=ENV_EPILOG, formatter_class=fmt
    )
    env_cmds = env.add_subparsers(dest="command", metavar="COMMAND", required=True)
    put = env_cmds.add_parser(
        "set",
        parents=[common],
        help="create or update an environment",
        description="An environment runs one base revision with one quantization profile; "
        "adapters are validated against what it can load, and released by its policy.",
        epilog=ENV_EPILOG,
        formatter_class=fmt,
    )
    put.add_argument("name", help="the environment's name, e.g. production")
    put.add_argument(
        "--base",
        required=True,
        metavar="MODEL@REVISION",
        help="the registered base model revision it serves (required; `adapterctl base list`)",
    )
    put.add_argument(
        "--quantization",
        default="bf16",
        metavar="PROFILE",
        help="the quantization profile it serves (default: %(default)s)",
    )
    put.add_argument(
        "--max-lora-rank",
        type=int,
        default=16,
        metavar="N",
        help="the highest LoRA rank it loads (default: %(default)s)",
    )
    put.add_argument(
        "--max-loras",
        type=int,
        default=4,
        metavar="N",
        help="how many adapters it holds at once (default: %(default)s)",
    )
    put.add_argument(
        "--target-modules",
        default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
        metavar="NAMES",
        help="comma-separated modules it can apply LoRA to (default: %(default)s)",
    )
    put.add_argument(
        "--allow-modules-to-save",
        action="store_true",
        help="serve adapters that save whole modules (e.g. embed_tokens) (default: refuse)",
    )
    put.add_argument(
        "--required-approvals",
        type=int,
        default=1,
        metavar="N",
        help="distinct approvers a revision needs here (default: %(default)s)",
    )
    put.add_argument(
        "--separate-approver-and-operator",
        action="store_true",
        help="an approver of a revision may not also roll it out (default: may)",
    )
    put.add_argument(
        "--canary-steps",
        default="10,50,100",
        metavar="PERCENTS",
        help="comma-separated traffic percentages of a canary (default: %(default)s)",
    )
    put.add_argument(
        "--max-model-len",
        type=int,
        default=0,
        metavar="TOKENS",
        help="the context length every replica must list for its base in GET /v1/models "
        "(default: 0, not checked)",
    )
    put.add_argument(
        "--allow-unproven-replica-base",
        action="store_true",
        help="serve on replicas whose /v1/models cannot prove the base revision (a folder not "
        "named after it); one that names another base is still refused (default: refuse)",
    )
    put.add_argument(
        "--gateway",
        action="append",
        default=[],
        metavar="URL",
        help="a gateway in front of the replicas (services/gateway), repeatable: it takes the "
        "routing document, so canaries work on stock vLLM replicas (default: none; replicas "
        "must split traffic themselves)",
    )
    put.set_defaults(run=run_env_set)
    lst = env_cmds.add_parser(
        "list", parents=[common], help="list environments", epilog=ENV_EPILOG, formatter_class=fmt
    )
    lst.set_defaults(run=run_env_list)


def suggest(wanted: str, known: Sequence[str]) -> str:
    """` (did you mean A or B?)` for the registered names closest to `wanted`, else ``."""
    close = difflib.get_close_matches(wanted, known, n=3, cutoff=0.4)
    if not close:
        # Same model, another revision: the revision is a digest, too unlike to be "close".
        model = wanted.partition("@")[0]
        close = [k for k in known if k.partition("@")[0] == model][:3]
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def preflight(event: AdapterTrained, catalogue: Mapping[str, Any]) -> list[str]:
    """What the validator would reject for the catalogue alone, said before publishing: an
    unregistered base or environment (with the nearest registered names), or a tokenizer or
    chat template other than the base's or a target environment's. `catalogue` is ingest's
    `GET /catalogue` answer."""
    bases = {f"{b['model_id']}@{b['revision']}": b for b in catalogue.get("base_models", [])}
    envs = {e["name"]: e for e in catalogue.get("environments", [])}
    wanted = f"{event.base_model.model_id}@{event.base_model.revision}"
    problems = []
    against: list[tuple[str, Mapping[str, Any]]] = []
    if wanted in bases:
        against.append((f"base {wanted}", bases[wanted]))
    else:
        problems.append(
            f"base model {wanted} is not registered{suggest(wanted, sorted(bases))}: "
            "see `adapterctl base list`, or have an admin register it"
        )
    for name in event.target_environments:
        if name not in envs:
            problems.append(
                f"environment {name!r} is not registered{suggest(name, sorted(envs))}: "
                "see `adapterctl env list`"
            )
        else:
            against.append((f"environment {name}", envs[name]))
    for what, spec in against:
        for field, label in (
            ("tokenizer_hash", "tokenizer"),
            ("chat_template_hash", "chat template"),
        ):
            ours, theirs = getattr(event, field), spec.get(field)
            if theirs and ours != theirs:
                problems.append(
                    f"the {label} differs from the {what}'s (expected {theirs}, found {ours}): "
                    "train and submit with the base's own tokenizer files (--base-folder)"
                )
    return problems
