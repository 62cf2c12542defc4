"""AG Grid pieces shared by the panels: Markdown escaping for link cells, the Chinese grid texts, a status cell.

Long tables (100 schools of an association) go in an AG Grid rather than an html.Table: the grid is one Dash
component whatever its rows, while Dash 4's renderer spends time quadratic in the number of components of a
callback's answer (measured: 2 700 table cells took 10 s to draw, 5 400 took 39 s).
"""
from __future__ import annotations

from .format import STATUS_SHAPES, status_label

GRID_ZH = {
    "noRowsToShow": "没有数据", "filterOoo": "筛选…", "contains": "包含", "notContains": "不包含", "equals": "等于",
    "notEqual": "不等于", "startsWith": "开头是", "endsWith": "结尾是", "blank": "为空", "notBlank": "不为空",
    "lessThan": "小于", "greaterThan": "大于", "lessThanOrEqual": "小于等于", "greaterThanOrEqual": "大于等于",
    "inRange": "介于", "inRangeStart": "从", "inRangeEnd": "到", "andCondition": "且", "orCondition": "或",
    "applyFilter": "应用", "resetFilter": "重置", "clearFilter": "清除", "cancelFilter": "取消",
    "selectAll": "全选", "searchOoo": "搜索…", "loadingOoo": "加载中…",
}


def md_escape(text: str) -> str:
    """Text shown through the grid's Markdown renderer, with Markdown's special characters escaped."""
    return "".join("\\" + c if c in "\\`*_{}[]()#+-.!|<>" else c for c in str(text))


def md_link(text: str, href: str) -> str:
    """A link cell for the grid's Markdown renderer."""
    return f"[{md_escape(text)}]({href})"


def status_text(status: str, lang: str, min_n: int = 10) -> str:
    """A status as its shape and label ("■ 红"), for a grid cell coloured by ``STATUS_CELL_CLASS``."""
    return f"{STATUS_SHAPES.get(status, '?')} {status_label(status, lang, None, min_n)}"


def grid_options(lang: str, **extra) -> dict:
    """The options every cockpit grid shares (no row animation, tooltips, selectable text, every column drawn),
    with AG Grid's own words in Chinese unless the page is in English."""
    options = {"animateRows": False, "tooltipShowDelay": 300, "enableCellTextSelection": True,
               "suppressColumnVirtualisation": True, **extra}
    if lang != "en":
        options["localeText"] = GRID_ZH
    return options


# cellClassRules colouring a status cell by the row's status (cockpit.css .grid-status-*)
STATUS_CELL_CLASS = {f"grid-status-{s}": f"params.data.status == '{s}'" for s in ("green", "amber", "red")}
