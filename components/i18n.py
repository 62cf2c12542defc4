"""UI strings in Chinese (default) and English. Indicator and entity names come from the registry and the
warehouse; this holds the interface's own words."""
from __future__ import annotations

STRINGS: dict[str, tuple[str, str]] = {
    "app.title": ("学校后勤决策驾驶舱", "School Logistics Decision Cockpit"),
    "nav.overview": ("总览", "Overview"),
    "nav.lang": ("English", "中文"),
    "nav.logout": ("退出", "Log out"),
    "demo.badge": ("演示数据", "Demo data"),
    "level.association": ("协会", "Association"),
    "level.region": ("地区", "Region"),
    "level.school": ("学校", "School"),
    "level.campus": ("校区", "Campus"),
    "level.facility": ("设施", "Facility"),
    "scope.all": ("全部学校", "All schools"),
    "scope.drill": ("下钻到…", "Drill down to…"),
    "period.label": ("统计期", "Period"),
    "period.7": ("近7天", "Last 7 days"),
    "period.30": ("近30天", "Last 30 days"),
    "period.90": ("近90天", "Last 90 days"),
    "period.365": ("近一年", "Last 12 months"),
    "period.ytd": ("今年以来", "Year to date"),
    "period.apply": ("应用", "Apply"),
    "status.green": ("达标", "On target"),
    "status.amber": ("预警", "Warning"),
    "status.red": ("告警", "Alert"),
    "status.none": ("参考", "Context"),
    "status.nodata": ("无数据", "No data"),
    "status.suppressed": ("样本不足 (n < {n})", "Too few (n < {n})"),
    "tile.vs_prev": ("较上期", "vs previous"),
    "tile.as_of": ("数据截至", "Data as of"),
    "tile.loaded": ("入库", "loaded"),
    "tile.not_applicable": ("不适用于此层级", "Not applicable at this level"),
    "tile.no_data_scope": ("本范围内无数据", "No data in this scope"),
    "tile.too_few_schools": ("仅 {n} 所学校，不显示分布", "Only {n} schools: no distribution shown"),
    "tile.drill": ("按下级查看", "Break down"),
    "tile.open_panel": ("进入专题", "Open panel"),
    "alerts.title": ("当前告警", "Current alerts"),
    "alerts.none": ("本范围与统计期内没有红色指标。", "No red indicator in this scope and period."),
    "alerts.indicator": ("指标", "Indicator"),
    "alerts.domain": ("领域", "Domain"),
    "alerts.where": ("位置", "Where"),
    "alerts.value": ("数值", "Value"),
    "alerts.level": ("层级", "Level"),
    "trend.title": ("趋势", "Trend"),
    "trend.weekly": ("（按周）", "(weekly)"),
    "trend.daily": ("（按日）", "(daily)"),
    "trend.none": ("该期间无趋势数据", "No trend data for this period"),
    "maturity.dimensions": ("各维度得分", "Dimension scores"),
    "maturity.levels": ("等级分布（学校数）", "Level distribution (schools)"),
    "maturity.per_school": ("成熟度按学校评估。", "Maturity is assessed per school."),
    "maturity.see_school": ("查看所属学校 →", "See the school →"),
    "breakdown.title": ("{name}：按{level}", "{name} by {level}"),
    "breakdown.close": ("收起", "Close"),
    "breakdown.none": ("该指标在此层级没有下级数据。", "This indicator has no lower-level figures here."),
    "breakdown.click": ("点击名称下钻到该{level}。", "Click a name to drill into that {level}."),
    "error.input": ("请求无法处理", "The request cannot be answered"),
    "error.denied": ("无权查看", "Not allowed"),
    "error.warehouse": ("数据仓库暂不可用，显示的数据可能不完整。稍后自动重试。",
                        "The data warehouse is unavailable; figures may be missing. It is retried automatically."),
    "error.warehouse.detail": ("原因", "Reason"),
    "error.back": ("返回总览", "Back to the overview"),
    "error.internal": ("页面出现内部错误，已记录。", "An internal error occurred and was logged."),
    "notfound.title": ("页面不存在", "Page not found"),
    "change.pp": ("个百分点", "pp"),
    "footer.source": ("数据来源：学校后勤数据仓库", "Source: school-logistics data warehouse"),
}


def register(strings: dict[str, tuple[str, str]]) -> None:
    """Add a module's own strings (a panel's components register theirs on import). Keys are unique."""
    clash = set(strings) & set(STRINGS)
    if clash:
        raise ValueError(f"UI string keys defined twice: {sorted(clash)}")
    STRINGS.update(strings)


def t(key: str, lang: str = "zh", **params) -> str:
    zh, en = STRINGS.get(key, (key, key))
    text = en if lang == "en" else zh
    return text.format(**params) if params else text


def pick(lang: str, zh: str, en: str) -> str:
    return en if lang == "en" else zh
