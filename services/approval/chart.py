"""A small inline SVG chart: each metric's change from the baseline, drawn from a zero axis.

Metrics live on different scales and point different ways (accuracy up, latency down, a
log-likelihood below zero), so a bar is the candidate's relative change from the baseline,
(candidate - baseline) / |baseline|, turned so that right is better and left is worse
whichever way the metric points. The bars share one scale, the largest change shown, at
least 10% (so noise stays small) and at most 100% (a larger change is drawn clipped, with
its number beside it). A metric without a baseline gets no bar, only the words, and with
no baseline at all there is no chart. `chart_rows` is the geometry, pure; `bar_chart` the
markup, with every label escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from html import escape

from services.approval.verdicts import Verdict
from services.approval.views import MetricComparison

LABEL, HALF, VALUES, ROW, TOP = 200, 150, 190, 28, 34
WIDTH = LABEL + 2 * HALF + VALUES
AXIS = LABEL + HALF
FLOOR, CAP = 0.10, 1.0  # the bars' common scale is the largest change, clamped to these
COLOURS = {"better": "#2f855a", "worse": "#c05621", "neutral": "#718096"}


class Kind(StrEnum):
    BAR = "bar"
    NO_BASELINE = "no-baseline"
    NOT_MEASURED = "not-measured"


@dataclass(frozen=True, slots=True)
class ChartRow:
    """One metric's bar: `x` and `width` in the chart's units, left of the axis when worse."""

    name: str
    kind: Kind
    x: float
    width: float
    tone: str  # better, worse, or neutral (no change, or no stated direction)
    clipped: bool
    label: str
    failed: bool


def change_of(candidate: float, baseline: float) -> float:
    """(candidate - baseline) / |baseline|; from a zero baseline any change is infinite."""
    if baseline != 0:
        return (candidate - baseline) / abs(baseline)
    return 0.0 if candidate == baseline else math.copysign(math.inf, candidate - baseline)


def _scale(changes: Sequence[float]) -> float:
    finite = [abs(c) for c in changes if math.isfinite(c)]
    return min(max([FLOOR, *finite]), CAP)


def chart_rows(metrics: Sequence[MetricComparison]) -> list[ChartRow]:
    """Each metric's geometry and words; right of the axis is better."""
    changes = {
        m.name: change_of(m.candidate, m.baseline)
        for m in metrics
        if m.candidate is not None and m.baseline is not None
    }
    scale = _scale(list(changes.values()))
    rows = []
    for m in metrics:
        failed = m.verdict is Verdict.FAILED
        if m.baseline is None or m.candidate is None:
            kind = Kind.NO_BASELINE if m.baseline is None else Kind.NOT_MEASURED
            words = "no baseline" if kind is Kind.NO_BASELINE else "not measured"
            rows.append(ChartRow(m.name, kind, AXIS, 0.0, "neutral", False, words, failed))
            continue
        change = changes[m.name]
        turned = -change if m.greater_is_better is False else change
        width = HALF * min(abs(turned) / scale, 1.0)
        if m.greater_is_better is None or change == 0:
            tone = "neutral"
        else:
            tone = "better" if turned > 0 else "worse"
        rows.append(
            ChartRow(
                name=m.name,
                kind=Kind.BAR,
                x=AXIS - width if turned < 0 else AXIS,
                width=width,
                tone=tone,
                clipped=abs(turned) > scale,
                label=_words(m.candidate, m.baseline, change, tone),
                failed=failed,
            )
        )
    return rows


def _words(candidate: float, baseline: float, change: float, tone: str) -> str:
    amount = f"{change:+.1%}" if math.isfinite(change) else f"from 0 to {candidate:.4g}"
    if change == 0:
        return "no change"
    said = {"better": "better", "worse": "worse", "neutral": "direction not stated"}[tone]
    return f"{amount} ({said})"


def bar_chart(metrics: Sequence[MetricComparison]) -> str:
    """SVG markup for the metrics; an empty string when none has a baseline to compare with."""
    rows = chart_rows(metrics)
    if not any(r.kind is Kind.BAR for r in rows):
        return ""
    height = TOP + ROW * len(rows) + 6
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" height="{height}"'
        f' viewBox="0 0 {WIDTH} {height}" class="chart">',
        "<title>Each metric's change from the baseline: right is better, left is worse</title>",
        f'<text x="{AXIS - 6}" y="14" font-size="11" text-anchor="end">← worse</text>'
        f'<text x="{AXIS + 6}" y="14" font-size="11">better →</text>'
        f'<text x="{LABEL + 2 * HALF + 8}" y="14" font-size="11">change from baseline</text>',
        f'<line x1="{AXIS}" y1="{TOP - 12}" x2="{AXIS}" y2="{height - 4}" stroke="#4a5568"/>',
    ]
    for index, row in enumerate(rows):
        parts.append(_row(row, TOP + index * ROW))
    parts.append("</svg>")
    return "".join(parts)


def _row(row: ChartRow, top: int) -> str:
    name = escape(row.name)
    failed = ' fill="#c53030"' if row.failed else ""
    mark = " ✗ gate failed" if row.failed else ""
    parts = [
        f'<g class="metric {row.kind.value} {row.tone}" data-metric="{name}">',
        f'<text x="{LABEL - 8}" y="{top + 12}" font-size="12" text-anchor="end"{failed}>'
        f"{name}{mark}</text>",
    ]
    if row.kind is Kind.BAR:
        parts.append(
            f'<rect x="{row.x:.1f}" y="{top}" width="{row.width:.1f}" height="{ROW - 10}"'
            f' fill="{COLOURS[row.tone]}"><title>{name}: {escape(row.label)}</title></rect>'
        )
        if row.clipped:
            left = row.x < AXIS
            edge = row.x + 7 if left else row.x + row.width - 7
            parts.append(
                f'<text x="{edge:.1f}" y="{top + 13}" font-size="12" text-anchor="middle"'
                f' fill="#fff">{"«" if left else "»"}</text>'
            )
    label_x = LABEL + 2 * HALF + 8 if row.kind is Kind.BAR else AXIS + 6
    parts.append(
        f'<text x="{label_x}" y="{top + 12}" font-size="11">{escape(row.label)}</text></g>'
    )
    return "".join(parts)
