"""Production-like load: a per-environment profile replayed against the backend, bounded.

A profile (`<profiles root>/<environment>.yaml`, else `default.yaml`) gives Poisson
arrivals with periodic bursts, a log-normal prompt length, the number of requests served
together at most (`concurrency`), and bounds in count and time. Candidate and baseline
requests alternate in one stream, so both see the same pressure; each request's latency
runs from its arrival to the end of the batch that answered it, queueing included.

A profile with `tenants` replays a second time with other tenants' adapters in the stream
(`tenants.py`): the same arrivals, a `tenant_share` of them sent to the others. A batch
holds at most the environment's `max_loras` distinct adapters, as vLLM schedules them; the
rest wait for a later batch.
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from services.gpu_evaluator.ports import EvaluationBackend, Message, Prompt, Target
from services.gpu_evaluator.tenants import TenantsError, parse_tenants


class ProfileError(ValueError):
    """A load profile that cannot be read: says which file and what is wrong."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadProfile:
    name: str = "default"
    concurrency: int = 4  # requests answered together at most
    requests: int = 32  # bound in count
    max_seconds: float = 20.0  # bound in time: what has not arrived by then is not sent
    rate_per_s: float = 8.0  # mean Poisson arrival rate
    burst_every_s: float = 0.0  # 0: no bursts
    burst_size: int = 0  # extra simultaneous arrivals at each burst
    prompt_words_median: int = 8
    prompt_words_sigma: float = 0.5  # log-normal spread of the prompt length
    prompt_words_max: int = 32
    max_new_tokens: int = 16
    seed: int = 0
    tenants: str = ""  # other tenants' adapters: "" none, N, `slots`, `slots+N` (tenants.py)
    tenant_share: float = 0.5  # share of arrivals sent to other tenants under pressure
    digest: str = ""
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_profile(root: Path | None, environment: str) -> Path | None:
    if root is None:
        return None
    for path in (root / f"{environment}.yaml", root / "default.yaml"):
        if path.is_file():
            return path
    return None


def parse_profile(data: bytes, *, source: str) -> LoadProfile:
    try:
        body = yaml.safe_load(data) or {}
        if not isinstance(body, dict):
            raise ValueError("a load profile is a mapping")
        known = {f.name for f in fields(LoadProfile)} - {"digest", "source"}
        unknown = sorted(set(body) - known)
        if unknown:
            raise ValueError(f"unknown keys {unknown}")
        defaults = LoadProfile()
        values = {k: type(getattr(defaults, k))(v) for k, v in body.items()}
        profile = LoadProfile(
            **values, digest="sha256:" + hashlib.sha256(data).hexdigest(), source=source
        )
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        raise ProfileError(f"{source}: {exc}") from exc
    if profile.concurrency < 1 or profile.requests < 1 or profile.max_seconds <= 0:
        raise ProfileError(f"{source}: concurrency, requests and max_seconds must be positive")
    if profile.rate_per_s <= 0 and profile.burst_size <= 0:
        raise ProfileError(f"{source}: no arrivals (rate_per_s and burst_size are both 0)")
    try:
        parse_tenants(profile.tenants)
    except TenantsError as exc:
        raise ProfileError(f"{source}: {exc}") from exc
    if not 0 < profile.tenant_share < 1:
        raise ProfileError(f"{source}: tenant_share must be between 0 and 1, both excluded")
    return profile


def load_profile(root: Path | None, environment: str) -> LoadProfile | None:
    path = find_profile(root, environment)
    if path is None or root is None:
        return None
    return parse_profile(path.read_bytes(), source=path.relative_to(root).as_posix())


@dataclass(frozen=True, slots=True)
class Arrival:
    at_s: float
    words: int
    target: int  # index into the replay's targets


def schedule(profile: LoadProfile, targets: int, *, tenants: int = 0) -> list[Arrival]:
    """The seeded arrivals: Poisson plus bursts, capped in count and time. With `tenants`,
    the same arrivals, each sent with probability `tenant_share` to one of the tenants
    (targets `targets`, `targets + 1`, ...), the others alternating between our targets."""
    rng = random.Random(profile.seed)
    times: list[float] = []
    t = 0.0
    while profile.rate_per_s > 0 and len(times) < profile.requests:
        t += rng.expovariate(profile.rate_per_s)
        if t >= profile.max_seconds:
            break
        times.append(t)
    if profile.burst_every_s > 0 and profile.burst_size > 0:
        at = profile.burst_every_s
        while at < profile.max_seconds:
            times += [at] * profile.burst_size
            at += profile.burst_every_s
    elif profile.burst_size > 0:
        times += [0.0] * profile.burst_size
    times = sorted(times)[: profile.requests]
    mu = math.log(max(1, profile.prompt_words_median))
    arrivals = [
        Arrival(
            at_s=at,
            words=min(
                profile.prompt_words_max,
                max(1, round(rng.lognormvariate(mu, profile.prompt_words_sigma))),
            ),
            target=i % targets,
        )
        for i, at in enumerate(times)
    ]
    if tenants <= 0:
        return arrivals
    # A stream of its own, so that pressure changes whose requests they are, never when
    # they arrive or how long they are.
    pick, ours = random.Random(f"{profile.seed}/tenants"), 0
    pressed = []
    for arrival in arrivals:
        if pick.random() < profile.tenant_share:
            target = targets + pick.randrange(tenants)
        else:
            target, ours = ours % targets, ours + 1
        pressed.append(Arrival(arrival.at_s, arrival.words, target))
    return pressed


def load_prompts(arrivals: Sequence[Arrival], seeds: Sequence[Prompt], seed: int) -> list[Prompt]:
    """One prompt per arrival: a suite prompt behind filler words from the suite's own
    prompts, up to the arrival's length, so the tokenizer knows every word."""
    rng = random.Random(seed)
    vocabulary = sorted({w for p in seeds for m in p for w in m.content.split()}) or ["a"]
    prompts: list[Prompt] = []
    for i, arrival in enumerate(arrivals):
        *context, last = seeds[i % len(seeds)]
        extra = max(0, arrival.words - len(last.content.split()))
        filler = " ".join(rng.choice(vocabulary) for _ in range(extra))
        content = f"{filler} {last.content}" if filler else last.content
        prompts.append((*context, Message(role=last.role, content=content)))
    return prompts


@dataclass(frozen=True, slots=True)
class Served:
    target: int
    latency_s: float
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class LoadStats:
    requests: int
    p50_ms: float
    p95_ms: float
    tokens_per_s: float


@dataclass(frozen=True, slots=True)
class LoadResult:
    served: tuple[Served, ...]
    unserved: int  # arrivals still queued when the time bound ran out
    batches: int
    duration_s: float

    def stats(self, target: int) -> LoadStats | None:
        mine = [s for s in self.served if s.target == target]
        if not mine:
            return None
        latencies = [s.latency_s for s in mine]
        busy = sum(latencies)
        return LoadStats(
            requests=len(mine),
            p50_ms=percentile(latencies, 50) * 1000,
            p95_ms=percentile(latencies, 95) * 1000,
            tokens_per_s=sum(s.completion_tokens for s in mine) / busy if busy else math.nan,
        )


def replay(
    backend: EvaluationBackend,
    profile: LoadProfile,
    targets: Sequence[Target],
    arrivals: Sequence[Arrival],
    prompts: Sequence[Prompt],
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    stop: threading.Event | None = None,
    slots: int | None = None,
) -> LoadResult:
    """Send each arrival when it is due, up to `concurrency` at once and at most `slots`
    distinct adapters in one batch; stop at the bounds."""
    start = clock()
    served: list[Served] = []
    pending: list[int] = []  # arrived, not yet answered, in arrival order
    arrived, batches = 0, 0
    wanted = [targets[a.target] for a in arrivals]
    while arrived < len(arrivals) or pending:
        now = clock() - start
        if now >= profile.max_seconds or (stop is not None and stop.is_set()):
            break
        while arrived < len(arrivals) and arrivals[arrived].at_s <= now:
            pending.append(arrived)
            arrived += 1
        if not pending:
            sleep(min(arrivals[arrived].at_s - now, profile.max_seconds - now))
            continue
        batch = next_batch(pending, wanted, profile, slots)
        pending = [i for i in pending if i not in batch]
        outputs = backend.generate(
            [prompts[i] for i in batch],
            [wanted[i] for i in batch],
            max_new_tokens=profile.max_new_tokens,
        )
        done = clock() - start
        batches += 1
        for i, out in zip(batch, outputs, strict=True):
            served.append(
                Served(
                    arrivals[i].target,
                    done - arrivals[i].at_s,
                    out.prompt_tokens,
                    out.completion_tokens,
                )
            )
    return LoadResult(
        served=tuple(served),
        unserved=len(arrivals) - len(served),
        batches=batches,
        duration_s=clock() - start,
    )


def next_batch(
    pending: Sequence[int], targets: Sequence[Target], profile: LoadProfile, slots: int | None
) -> list[int]:
    """The earliest pending requests, up to `concurrency`, skipping any whose adapter would
    be one more than `slots` in the batch (the base model takes no slot)."""
    batch: list[int] = []
    adapters: set[str] = set()
    for i in pending:
        if len(batch) == profile.concurrency:
            break
        target = targets[i]
        if target is not None and target.revision not in adapters:
            if slots is not None and len(adapters) >= slots:
                continue
            adapters.add(target.revision)
        batch.append(i)
    return batch


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile, interpolated linearly between the closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * min(100.0, max(0.0, q)) / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
