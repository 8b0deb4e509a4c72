"""How `adapterctl rollout list|status` show rollouts: the cells of the activator's
`GET /canaries` rows, the status page, one line per environment for `status --watch`, and
when a watched rollout has ended. Pure functions of the APIs' JSON."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from adapterctl.output import NONE, moment, table

LIST_HEADERS = (
    "ADAPTER",
    "ENVIRONMENT",
    "CANARY",
    "STEP",
    "SHARE",
    "SAMPLES",
    "ERROR RATE",
    "P95",
    "NEXT STEP",
    "VERDICT",
)


def digest(revision: str | None) -> str:
    """A revision's first 12 hex digits, as operators type it back."""
    return revision.removeprefix("sha256:")[:12] if revision else NONE


def step_of(step: int | None, steps: int) -> str:
    return f"{step if step is not None else '-'}/{steps}" if steps else NONE


def versus(value: float | None, limit: float | None, *, percent: bool = False) -> str:
    """`value / limit`, as a percentage or in ms; `-` for what is not known."""

    def show(x: float | None) -> str:
        if x is None:
            return NONE
        return f"{x * 100:.1f}%" if percent else f"{x:.0f}ms"

    if value is None and limit is None:
        return NONE
    return f"{show(value)} / {show(limit)}"


def wait(seconds: float) -> str:
    """The time left before the next step may be taken."""
    if seconds <= 0:
        return "now"
    whole = int(seconds + 0.999)
    return f"{whole}s" if whole < 60 else f"{whole // 60}m{whole % 60:02d}s"


def canary_cells(canary: Mapping[str, Any]) -> tuple[str, ...]:
    return (
        canary["adapter"],
        canary["environment"],
        digest(canary["revision"]),
        step_of(canary["step"], canary["steps"]),
        f"{canary['traffic_percent']}%",
        f"{canary['samples']}/{canary['min_samples']}",
        versus(canary["error_rate"], canary["error_rate_limit"], percent=True),
        versus(canary["p95_ms"], canary["p95_limit_ms"]),
        wait(canary["next_step_in_s"]),
        canary["verdict"],
    )


def canary_table(canaries: Sequence[Mapping[str, Any]]) -> str:
    """Every canary, one row each, its verdict's reason on the line below."""
    if not canaries:
        return "no canary in progress"
    rows = [canary_cells(c) for c in canaries]
    return table(LIST_HEADERS, rows, notes=[c["reason"] or NONE for c in canaries])


def status_lines(state: Mapping[str, Any]) -> dict[str, str]:
    """One line per environment of `rollout status --json`'s state: what changes there."""
    decisions = {c["environment"]: c.get("last_decision") or {} for c in state["canaries"]}
    lines = {}
    for p in state["pointers"]:
        env = p["environment"]
        line = f"{env}: active {digest(p['active'])}"
        if p["canary"]:
            decision = decisions.get(env, {})
            line += (
                f", canary {digest(p['canary'])} at {p['canary_percent']}%: "
                f"{decision.get('decision', 'not judged yet')} ({decision.get('reason', '-')})"
            )
        lines[env] = line
    return lines


def watched(state: Mapping[str, Any]) -> dict[str, str]:
    """The canary revision of each environment that has one: what `--watch` follows."""
    return {p["environment"]: p["canary"] for p in state["pointers"] if p["canary"]}


def ended(watching: Mapping[str, str], state: Mapping[str, Any]) -> int | None:
    """None while a watched canary still runs; else 0 when every one is active now
    (promoted), 1 when one is not (rolled back, aborted or replaced)."""
    pointers = {p["environment"]: p for p in state["pointers"]}
    promoted = []
    for environment, revision in watching.items():
        pointer = pointers.get(environment)
        if pointer and pointer["canary"] == revision and pointer["canary_percent"] < 100:
            return None
        promoted.append(pointer is not None and revision in (pointer["active"], pointer["canary"]))
    return 0 if all(promoted) else 1


def followed(revision: str, environment: str, state: Mapping[str, Any], seen: bool) -> int | None:
    """For `--watch --revision`: None while `revision` has not reached `environment` yet
    (approved, not rolled out) or canaries there; 0 once it is active with no canary of its
    own; 1 when, having been there, it no longer is (rolled back, aborted, replaced)."""
    pointer = next((p for p in state["pointers"] if p["environment"] == environment), None)
    if pointer is not None and pointer["canary"] == revision and pointer["canary_percent"] < 100:
        return None
    if pointer is not None and revision in (pointer["active"], pointer["canary"]):
        return 0
    return 1 if seen else None


def _moment(text: str | None) -> str:
    return moment(datetime.fromisoformat(text) if text else None)


def render_status(state: Mapping[str, Any]) -> str:
    """`rollout status`'s page: the pointers, each canary's step and verdict, and the
    recent answers."""
    rows = [
        (
            p["environment"],
            p["active"],
            p["canary"],
            f"{p['canary_percent']}%",
            p["rollback_target"],
        )
        for p in state["pointers"]
    ]
    blocks = [table(("ENVIRONMENT", "ACTIVE", "CANARY", "SHARE", "ROLLBACK TARGET"), rows)]
    for c in state["canaries"]:
        decision = c["last_decision"] or {}
        blocks.append(
            f"\ncanary in {c['environment']} at {c['traffic_percent']}% since "
            f"{_moment(c['step_started_at'])}: "
            f"{decision.get('decision', 'not judged yet')} ({decision.get('reason', '-')})"
        )
    blocks.append("\nRecent answers:")
    answers = [
        (
            _moment(o["decided_at"]),
            o["environment"],
            o["action"],
            o["outcome"],
            o["principal"],
            o["detail"],
        )
        for o in state["outcomes"]
    ]
    blocks.append(table(("WHEN", "ENVIRONMENT", "ACTION", "OUTCOME", "BY", "DETAIL"), answers))
    return "\n".join(blocks)


def edited_replicas(current: Sequence[str], add: Sequence[str], remove: Sequence[str]) -> list[str]:
    """The replica list with `add` appended (those not listed yet) and `remove` taken out;
    ValueError naming a URL to remove that is not listed. Trailing slashes do not count."""

    def key(url: str) -> str:
        return url.rstrip("/")

    listed = {key(url) for url in current}
    missing = [url for url in remove if key(url) not in listed]
    if missing:
        raise ValueError(f"not a replica of the environment: {', '.join(missing)}")
    gone = {key(url) for url in remove}
    kept = [url for url in current if key(url) not in gone]
    for url in add:
        if key(url) not in {key(u) for u in kept}:
            kept.append(url)
    return kept


def _number(evidence: Mapping[str, str], key: str) -> float | None:
    text = evidence.get(key, "none")
    try:
        return None if text in ("", "none") else float(text)
    except ValueError:
        return None


def analysis_line(evidence: Mapping[str, str]) -> str | None:
    """The canary analysis behind a move, on one line; None when no analysis made it (an
    operator's command carries `{"operator": ...}` instead).

    `expand -> 50%: 60 of 20 samples, errors 0.0% / 5.0%, p95 80ms / -, observed 30s of 60s`
    """
    decision = evidence.get("decision")
    if not decision:
        return None
    target = f" -> {evidence['next_percent']}%" if evidence.get("next_percent") else ""
    samples = f"{evidence.get('canary.requests', '0')} of {evidence.get('min_samples', '?')}"
    errors = versus(
        _number(evidence, "canary.error_rate"), _number(evidence, "limit.error_rate"), percent=True
    )
    p95 = versus(_number(evidence, "canary.p95_ms"), _number(evidence, "limit.p95_ms"))
    observed = _number(evidence, "observed_s")
    interval = _number(evidence, "step_interval_s")
    window = (
        f", observed {observed:.0f}s of {interval:.0f}s"
        if observed is not None and interval is not None
        else ""
    )
    return f"{decision}{target}: {samples} samples, errors {errors}, p95 {p95}{window}"
