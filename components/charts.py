"""Plotly figures: small trends, breakdown bars, dimension bars. Built with plotly.graph_objects (cheaper than
plotly.express in hot callbacks) and the theme's templates; no colour literals outside theme.py."""
from __future__ import annotations

import plotly.graph_objects as go

from .format import fmt_value
from .theme import ACCENT, STATUS_COLORS, template


def _base(fig: go.Figure, height: int, dark: bool) -> go.Figure:
    fig.update_layout(template=template(dark), height=height, margin=dict(l=8, r=8, t=8, b=8),
                      showlegend=False, hovermode="x unified",
                      font=dict(family="Noto Sans CJK SC, Microsoft YaHei, PingFang SC, sans-serif"))
    return fig


def sparkline(dates: list[str], values: list[float | None], unit: str, dark: bool = False, height: int = 110,
              band: tuple[float, float] | None = None) -> go.Figure:
    """A small line over time; ``band`` shades the amber..green target zone when given."""
    fig = go.Figure(go.Scatter(x=dates, y=values, mode="lines", line=dict(color=ACCENT, width=2),
                               hovertemplate="%{x}: %{y:.1f}" + ("%" if unit == "%" else f" {unit}") + "<extra></extra>",
                               connectgaps=False))
    if band is not None:
        fig.add_hrect(y0=band[0], y1=band[1], fillcolor=STATUS_COLORS["green"], opacity=0.08, line_width=0)
    fig.update_xaxes(showgrid=False, tickformat="%m-%d", nticks=5)
    fig.update_yaxes(nticks=3, ticksuffix="%" if unit == "%" else "")
    return _base(fig, height, dark)


def breakdown_bar(names: list[str], values: list[float | None], statuses: list[str], unit: str,
                  decimals: int = 1, dark: bool = False) -> go.Figure:
    """Horizontal bars of one indicator across child entities, coloured (and labelled) by status."""
    labels = [fmt_value(v, unit, decimals) if v is not None else "—" for v in values]
    fig = go.Figure(go.Bar(
        y=names, x=[v if v is not None else 0 for v in values], orientation="h",
        marker=dict(color=[STATUS_COLORS.get(s, STATUS_COLORS["none"]) for s in statuses]),
        text=labels, textposition="auto", hovertemplate="%{y}: %{text}<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(ticksuffix="%" if unit == "%" else "", automargin=True)
    return _base(fig, max(160, 28 * len(names) + 40), dark)


def bars(labels: list[str], values: list[float], dark: bool = False, height: int = 110, suffix: str = "") -> go.Figure:
    """Plain vertical bars (dimension scores, level counts)."""
    fig = go.Figure(go.Bar(x=labels, y=values, marker=dict(color=ACCENT), text=[f"{v:.0f}{suffix}" for v in values],
                           textposition="auto", hovertemplate="%{x}: %{y:.1f}<extra></extra>"))
    fig.update_yaxes(nticks=3, rangemode="tozero")
    return _base(fig, height, dark)


def hbars(labels: list[str], values: list[float], dark: bool = False, bar_px: int = 22) -> go.Figure:
    """Horizontal bars with the labels readable on the left (dimension scores)."""
    fig = go.Figure(go.Bar(y=labels, x=values, orientation="h", marker=dict(color=ACCENT),
                           text=[f"{v:.0f}" for v in values], textposition="outside", cliponaxis=False,
                           hovertemplate="%{y}: %{x:.1f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(range=[0, 112], tickvals=[0, 50, 100])
    return _base(fig, bar_px * len(labels) + 30, dark)
