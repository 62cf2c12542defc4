"""Wall-screen (大屏) factories: a 16:9 layout for reading at a distance — few big numbers, status carried by
colour, shape and label, "数据截至" on every tile, a clock and an alert ticker. Sizes scale with the viewport
(vw/vh), so one layout serves 1920×1080 and 3840×2160."""
from __future__ import annotations

import datetime as dt

import plotly.graph_objects as go
from dash import dcc, html

from .format import STATUS_SHAPES, fmt_change, fmt_compact, fmt_datetime, fmt_level, fmt_number
from .i18n import register, t
from .theme import ACCENT, template

VIEW_TYPE = "screen-view"   # pattern-matching id type of a rotated view
CLOCK = "screen-clock"

register({
    "screen.title": ("后勤大屏", "Logistics wall screen"),
    "screen.view.overview": ("总览", "Overview"),
    "screen.view.dining": ("餐饮安全", "Dining safety"),
    "screen.view.energy": ("能源", "Energy"),
    "screen.view.service": ("服务满意度", "Service"),
    "screen.view.maturity": ("数字化成熟度", "Digital maturity"),
    "screen.updated": ("更新于", "Updated"),
    "screen.stale": ("数据未刷新 {age}，显示最近一次成功数据", "Not refreshed for {age}; showing the last good data"),
    "screen.loading": ("数据加载中…", "Loading data…"),
    "screen.no_alerts": ("当前无告警", "No current alerts"),
    "screen.alerts": ("告警", "Alerts"),
    "screen.unavailable": ("数据暂不可用，正在重试", "Data unavailable; retrying"),
    "screens.title": ("大屏运行状态", "Wall screens"),
    "screens.none": ("还没有大屏上报心跳。打开下面的示例链接即可开始。", "No screen has reported yet. Open an example link below to start one."),
    "screens.examples": ("示例大屏链接", "Example screen links"),
    "screens.example_name": ("后勤大屏{n}", "Logistics screen {n}"),
    "screens.tokens": ("墙上的大屏不登录：用只读大屏令牌打开（python -m data_access.accounts screen-token --school 学校代码），"
                       "链接加 &token=…", "A wall screen does not log in: open it with a read-only screen token "
                       "(python -m data_access.accounts screen-token --school ID) by adding &token=… to its link"),
    "screens.col.name": ("大屏", "Screen"),
    "screens.col.views": ("轮播视图", "Views"),
    "screens.col.shown": ("当前视图", "Showing"),
    "screens.col.seen": ("最近心跳", "Last heartbeat"),
    "screens.col.success": ("最近成功刷新", "Last good refresh"),
    "screens.col.health": ("状态", "Health"),
    "screens.health.ok": ("正常", "OK"),
    "screens.health.stale": ("{name} 未刷新 {age}", "{name} not refreshed for {age}"),
    "screens.health.silent": ("{name} 离线 {age}", "{name} silent for {age}"),
})


def age_text(seconds: float, lang: str) -> str:
    seconds = max(0, int(seconds))
    if seconds < 3600:
        return f"{max(1, seconds // 60)} 分钟" if lang == "zh" else f"{max(1, seconds // 60)} min"
    if seconds < 86400:
        return f"{seconds // 3600} 小时" if lang == "zh" else f"{seconds // 3600} h"
    return f"{seconds // 86400} 天" if lang == "zh" else f"{seconds // 86400} d"


# Sizes in vw (assets/screen.css): the big number, the unit beside it, the text of a tile without a value, and the
# inner width of a tile (its content box, with a little slack) per number of grid columns. The value is drawn as
# large as NUMBER_VW allows and smaller when it would not fit its tile (view_panel knows the columns).
NUMBER_VW, UNIT_VW, MUTED_VW, MIN_VW = 4.6, 1.6, 2.0, 1.2
TILE_CONTENT_VW = {3: 27.0, 4: 19.0}


def text_em(text: str) -> float:
    """Estimated width of ``text`` in em of a bold sans-serif (on the wide side: DejaVu Sans Bold, whose digits
    are 0.7 em; CJK characters are 1 em), so that an estimate that fits really fits."""
    width = 0.0
    for ch in text:
        if ord(ch) >= 0x2E80:
            width += 1.0
        elif ch in ",.:;'| ":
            width += 0.38
        elif ch in "MW%mw@":
            width += 1.0
        else:
            width += 0.72
    return width


def value_size(text: str, unit: str, columns: int, largest: float = NUMBER_VW) -> float:
    """The font size (vw) at which ``text`` and its unit fit a tile of a grid with ``columns`` columns."""
    room = TILE_CONTENT_VW.get(columns, TILE_CONTENT_VW[4])
    if unit:
        room -= text_em(unit) * UNIT_VW + 0.4          # the unit and its margin (.st-unit)
    return round(max(MIN_VW, min(largest, room / max(text_em(text), 0.5))), 2)


def screen_tile(indicator, tile: dict, lang: str, min_n: int = 10, columns: int = 3) -> html.Div:
    status = tile["status"]
    value = tile["value"]
    if status == "suppressed":
        text, unit = t("status.suppressed", lang, n=min_n), ""
    elif value is None:
        text, unit = t("tile.not_applicable" if tile.get("not_applicable") else "tile.no_data_scope", lang), ""
    elif indicator.unit == "级":
        text, unit = fmt_level(value), ""
    else:
        text = (fmt_compact(value, lang, indicator.decimals) if abs(value) >= 1e4
                else fmt_number(value, indicator.decimals, indicator.unit))
        unit = indicator.unit
    as_of = dt.datetime.fromisoformat(tile["as_of"]) if tile.get("as_of") else None
    size = value_size(text, unit, columns, MUTED_VW if value is None else NUMBER_VW)
    return html.Div([
        html.Div(indicator.name(lang), className="st-name"),
        html.Div([html.Span(text, className="st-number", style={"fontSize": f"{size}vw"}),
                  html.Span(unit, className="st-unit")],
                 className="st-value" + (" st-muted" if value is None else ""),
                 **{"data-value": "" if value is None else repr(value)}),
        html.Div([
            html.Span([html.Span(STATUS_SHAPES.get(status, "?"), className="st-shape"), " ",
                       t(f"status.{status}", lang, n=min_n)], className=f"st-badge status-{status}"),
            html.Span(fmt_change(tile.get("change"), indicator.change, indicator.unit, lang, indicator.decimals),
                      className="st-change") if tile.get("change") is not None else None,
        ], className="st-status"),
        html.Div([t("tile.as_of", lang), " ", fmt_datetime(as_of)], className="st-asof"),
    ], className=f"screen-tile status-{status}", **{"data-indicator": indicator.id, "data-status": status})


def trend_figure(x, y, unit: str, dark: bool, scale: float = 1.0) -> go.Figure:
    """``scale``: viewport width ÷ 1920, so text on a 4K screen is as large as on a 1080p one."""
    fig = go.Figure(go.Scatter(x=x, y=y, mode="lines", line=dict(color=ACCENT, width=4 * scale), connectgaps=False,
                               hoverinfo="skip"))
    fig.update_layout(template=template(dark), margin=dict(l=10, r=10, t=10, b=10), showlegend=False,
                      font=dict(size=round(18 * scale), family="Noto Sans CJK SC, Microsoft YaHei, sans-serif"),
                      paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)")
    fig.update_xaxes(showgrid=False, tickformat="%m-%d", nticks=6)
    fig.update_yaxes(nticks=4, ticksuffix="%" if unit == "%" else "")
    return fig


def view_panel(view: str, tiles: list, trend: dict | None, trend_indicator, lang: str, active: bool,
               dark: bool, min_n: int = 10, scale: float = 1.0) -> html.Div:
    """tiles: [(Indicator, tile dict)]."""
    columns = 4 if len(tiles) in (4, 8) else 3        # assets/screen.css: .screen-grid-N
    children = [html.Div([screen_tile(ind, tile, lang, min_n, columns) for ind, tile in tiles],
                         className=f"screen-grid screen-grid-{len(tiles)}")]
    if trend and trend_indicator is not None and any(v is not None for v in trend["y"]):
        children.append(html.Div([
            html.Div(f"{t('trend.title', lang)} · {trend_indicator.name(lang)}", className="st-trend-title"),
            dcc.Graph(figure=trend_figure(trend["x"], trend["y"], trend_indicator.unit, dark, scale), responsive=True,
                      config={"displayModeBar": False, "staticPlot": True}, className="st-trend-graph",
                      style={"height": "100%"}),
        ], className="screen-trend"))
    return html.Div(children, id={"type": VIEW_TYPE, "index": view},
                    className="screen-view active" if active else "screen-view")


def ticker(alerts: list[dict], names: dict, lang: str) -> html.Div:
    """A scrolling line of the current red alerts (``names``: indicator id → display name)."""
    if not alerts:
        return html.Div(html.Span(t("screen.no_alerts", lang), className="ticker-calm"), className="ticker")
    items = []
    for a in alerts:
        items.append(html.Span([html.Span(STATUS_SHAPES["red"], className="st-shape"), " ",
                                f"{a['where']} · {names.get(a['indicator'], a['indicator'])}"],
                               className="ticker-item"))
    # the line is doubled so the animation loops without a gap
    return html.Div(html.Div(items + items, className="ticker-track",
                             style={"animationDuration": f"{max(20, 6 * len(items))}s"}),
                    className="ticker", **{"data-alerts": str(len(alerts))})


def header(title: str, scope_name: str, view_names: list[str], active: int, status_text: str, stale: bool) -> list:
    return [
        html.Div([html.Span(title, className="sh-title"), html.Span(scope_name, className="sh-scope")],
                 className="sh-left"),
        html.Div([html.Span(n, className="sh-dot" + (" active" if i == active else ""), **{"data-view": n})
                  for i, n in enumerate(view_names)], className="sh-views"),
        html.Div(html.Span(status_text, className="sh-status" + (" sh-stale" if stale else ""), id="screen-status"),
                 className="sh-right"),
    ]


def screens_table(rows: list[dict], lang: str, now: dt.datetime) -> html.Div:
    if not rows:
        return html.Div(t("screens.none", lang), className="text-muted", id="screens-empty")
    head = html.Thead(html.Tr([html.Th(t(f"screens.col.{c}", lang)) for c in
                               ("name", "views", "shown", "seen", "success", "health")]))
    body = []
    for r in rows:
        if r["health"] == "ok":
            health = html.Span([STATUS_SHAPES["green"], " ", t("screens.health.ok", lang)], className="status-badge status-green")
        else:
            age = age_text((now - r["since"]).total_seconds(), lang) if r["since"] else "—"
            key = "screens.health.stale" if r["health"] == "stale" else "screens.health.silent"
            health = html.Span([STATUS_SHAPES["red"], " ", t(key, lang, name=r["name"], age=age)],
                               className="status-badge status-red")
        body.append(html.Tr([
            html.Td(html.A(r["name"], href=r["url"], target="_blank")),
            html.Td(r["views"]), html.Td(r["view_shown"] or "—"),
            html.Td(fmt_datetime(r["last_seen"])), html.Td(fmt_datetime(r["last_success"])), html.Td(health),
        ], **{"data-screen": r["screen_id"], "data-health": r["health"]}))
    return html.Table([head, html.Tbody(body)], className="table table-sm table-hover", id="screens-table")


def view_label(view: str, lang: str) -> str:
    return t(f"screen.view.{view}", lang)

