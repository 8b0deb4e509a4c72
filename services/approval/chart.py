"""A small inline SVG bar chart: each metric's baseline beside its candidate.

Metrics live on different scales (a share, milliseconds, tokens per second), so each
metric's pair of bars is scaled to the larger of its two values: the chart shows the
direction and size of each change, the table beside it the numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from services.approval.views import MetricComparison

WIDTH, LABEL, BAR, ROW, GAP = 560, 170, 300, 40, 4
BASELINE_COLOUR, PASSED_COLOUR, FAILED_COLOUR = "#9aa5b1", "#2b6cb0", "#c53030"


def _value(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.4g}"


def bar_chart(metrics: Sequence[MetricComparison]) -> str:
    """SVG markup (every label escaped) for the metrics; an empty string for none."""
    if not metrics:
        return ""
    height = ROW * len(metrics) + 24
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" height="{height}"'
        f' viewBox="0 0 {WIDTH} {height}" class="chart">',
        "<title>Candidate against baseline, per metric</title>",
        f'<rect x="{LABEL}" y="2" width="10" height="10" fill="{BASELINE_COLOUR}"/>'
        f'<text x="{LABEL + 14}" y="11" font-size="11">baseline</text>'
        f'<rect x="{LABEL + 80}" y="2" width="10" height="10" fill="{PASSED_COLOUR}"/>'
        f'<text x="{LABEL + 94}" y="11" font-size="11">candidate (red: gate failed)</text>',
    ]
    for index, metric in enumerate(metrics):
        top = 20 + index * ROW
        scale = max(abs(metric.candidate or 0.0), abs(metric.baseline or 0.0)) or 1.0
        colour = PASSED_COLOUR if metric.passed else FAILED_COLOUR
        name = escape(metric.name)
        parts.append(
            f'<text x="{LABEL - 8}" y="{top + 17}" font-size="12" text-anchor="end">{name}</text>'
        )
        for offset, value, fill, who in (
            (0, metric.baseline, BASELINE_COLOUR, "baseline"),
            (ROW // 2 - GAP, metric.candidate, colour, "candidate"),
        ):
            width = 0.0 if value is None else BAR * abs(value) / scale
            y = top + offset
            label = escape(f"{who} {_value(value)}")
            parts.append(
                f'<rect x="{LABEL}" y="{y}" width="{width:.1f}" height="{ROW // 2 - GAP * 2}"'
                f' fill="{fill}"><title>{name}: {label}</title></rect>'
                f'<text x="{LABEL + width + 4:.1f}" y="{y + 11}" font-size="10">'
                f"{escape(_value(value))}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)
