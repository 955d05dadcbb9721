"""A small inline SVG chart of a few numbers (pure: no I/O), for the admin's health page.

svg = sparkline([0, 3, 12, 4], title="entries waiting, by the hour queued")
"""

from __future__ import annotations

from django.utils.html import format_html
from django.utils.safestring import SafeString


def points(values: list[int], width: float, height: float) -> str:
    """The polyline's ``x,y`` points: the values left to right, the largest at the top (0 at the bottom)."""
    if not values:
        return ""
    top = max(values) or 1
    step = width / max(len(values) - 1, 1)
    return " ".join(f"{i * step:.1f},{height - value / top * height:.1f}" for i, value in enumerate(values))


def sparkline(values: list[int], title: str, width: int = 240, height: int = 36) -> SafeString:
    """An inline ``<svg>`` line of ``values`` with a ``<title>`` (a screen reader's and a tooltip's text)."""
    return format_html(
        '<svg class="reindex-sparkline" role="img" width="{}" height="{}" viewBox="-2 -2 {} {}">'
        '<title>{}</title><polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{}"/></svg>',
        width,
        height,
        width + 4,
        height + 4,
        title,
        points(values, width, height),
    )
