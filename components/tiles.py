"""Headline tiles (KPI cards): value, unit, status with shape and label, change, and "data as of"."""
from __future__ import annotations

from dash import dcc, html

from .format import (
    STATUS_SHAPES,
    fmt_change,
    fmt_compact,
    fmt_datetime,
    fmt_level,
    fmt_number,
    fmt_value,
    status_label,
)
from .i18n import register, t

register({
    "tile.hazards.high": ("其中高风险 {n} 个", "high severity: {n}"),
    "tile.certs.detail": ("已过期 {expired} · {days}天内到期 {expiring}", "expired {expired} · expiring in {days} d {expiring}"),
    "tile.certs.detail_soon": ("已过期 {expired} · 即将到期 {expiring}", "expired {expired} · expiring soon {expiring}"),
})


def status_badge(status: str, lang: str, min_n: int = 10, n: int | None = None, size: str = "") -> html.Span:
    return html.Span(
        [html.Span(STATUS_SHAPES.get(status, "?"), className="status-shape", **{"aria-hidden": "true"}),
         " ", status_label(status, lang, n, min_n)],
        className=f"status-badge status-{status} {size}".strip(),
    )


def _change_class(change: float | None, direction: str) -> str:
    if change is None or change == 0 or direction == "none":
        return "change-neutral"
    good = (change > 0) == (direction == "higher")
    return "change-good" if good else "change-bad"


def kpi_tile(indicator, current, change, as_of: dict, lang: str, href: str | None = None,
             min_n: int = 10, tile_id: dict | str | None = None, detail: list | None = None,
             warning_days: int | None = None) -> html.Div:
    """One tile. ``indicator`` is a registry Indicator, ``current`` its Result for the scope. ``detail``: extra
    lines (components) a panel shows under the status line (e.g. a year-on-year change, the peer median).
    ``warning_days``: the certificates' warning window (config dining.certificate_warning_days); by default the
    one the certificates measure reports in its result (``extra["warning_days"]``)."""
    status = current.status
    not_applicable = bool(current.extra.get("not_applicable"))
    if status == "suppressed":
        value_text = t("status.suppressed", lang, n=min_n)
        value_class = "kpi-value kpi-value-muted"
    elif current.value is None and current.extra.get("too_few"):
        value_text = t("tile.too_few_schools", lang, n=current.n or 0)
        value_class = "kpi-value kpi-value-muted"
    elif current.value is None:
        value_text = t("tile.not_applicable" if not_applicable else "tile.no_data_scope", lang)
        value_class = "kpi-value kpi-value-muted"
    elif indicator.unit == "级":
        value_text = fmt_level(current.value)
        value_class = "kpi-value"
    else:
        number = (fmt_compact(current.value, lang, indicator.decimals) if abs(current.value) >= 1e4
                  else fmt_number(current.value, indicator.decimals, indicator.unit))
        value_text = [number, html.Span("%" if indicator.unit == "%" else indicator.unit,
                                        className="kpi-unit" if indicator.unit != "%" else "kpi-unit-pct")]
        value_class = "kpi-value"

    extra_line = []
    high = int(current.extra.get("high") or 0)
    if indicator.id == "dining.hazards_overdue" and current.value and high > 0:
        extra_line = [html.Div(t("tile.hazards.high", lang, n=high), className="kpi-detail")]
    if indicator.id == "dining.certificates_expiring" and current.value is not None:
        days = warning_days if warning_days is not None else current.extra.get("warning_days")
        counts = dict(expired=int(current.extra.get("expired") or 0), expiring=int(current.extra.get("expiring") or 0))
        extra_line = [html.Div(t("tile.certs.detail", lang, days=int(days), **counts) if days is not None
                               else t("tile.certs.detail_soon", lang, **counts), className="kpi-detail")]
    if indicator.unit == "级" and current.extra.get("capped_by"):
        extra_line = [html.Div(
            (f"按得分 L{int(current.extra.get('level_by_score'))}，受维度下限约束" if lang == "zh"
             else f"L{int(current.extra.get('level_by_score'))} by score, capped by a dimension floor"),
            className="kpi-detail")]

    # Newest fact in scope; tables without a date per row (certificates) fall back to their load time.
    as_of = as_of or {}
    as_of_text = fmt_datetime(as_of.get("fact") or as_of.get("loaded_at"))
    body = [
        html.Div(indicator.name(lang), className="kpi-name", title=indicator.formula(lang)),
        html.Div(value_text, className=value_class, title=fmt_value(current.value, indicator.unit, indicator.decimals),
                 **{"data-value": "" if current.value is None else repr(current.value)}),
        html.Div([
            None if not_applicable else status_badge(status, lang, min_n),
            html.Span(
                [t("tile.vs_prev", lang), " ",
                 fmt_change(change, indicator.change, indicator.unit, lang, indicator.decimals)],
                className=f"kpi-change {_change_class(change, indicator.direction)}",
            ) if status not in ("suppressed", "nodata") else None,
        ], className="kpi-status-line"),
        *extra_line,
        *(detail or []),
        html.Div([t("tile.as_of", lang), " ", as_of_text], className="kpi-asof",
                 title=f"{t('tile.loaded', lang)} {fmt_datetime(as_of.get('loaded_at'))}"),
    ]
    card = html.Div(body, className=f"kpi-tile status-{status}", id=tile_id or f"tile-{indicator.id.replace('.', '-')}",
                    **{"data-indicator": indicator.id, "data-status": status})
    if href:
        return dcc.Link(card, href=href, className="kpi-link", title=indicator.formula(lang))
    return card
