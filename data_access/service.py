"""Service satisfaction (服务满意度与报修): queries, indicator declarations and the panel's data.

Every figure here rests on people (respondents, requesters), so each indicator carries ``n`` and is
suppressed below config ``privacy.min_group_size``. Roll-ups weight by responses: the CSI of a region is the
mean over all its responses, not a mean of school indices.

Groupings (the ``by`` of a measure): None (the whole scope), ``"day"``, a child level (region, school, campus,
facility), a column of the fact table (service_line, respondent_type, kind, priority), or a tuple of two of
these, e.g. ``("school", "service_line")`` for the panel's matrix; the key of a tuple grouping is a tuple.

Counts of orders (volumes, the open-order list) are shown as they are: they carry no one's opinion, and the
suppression label itself already tells that a group holds fewer than 10. Rates, indices, percentiles and
intensities computed from fewer than 10 responses or orders are suppressed by the registry.

Complementary suppression (``protect``): a withheld group must not be recoverable by subtraction from the
figures shown beside it (a school's CSI × 19 responses − its dormitory's × 10 = its dining's × 9). Wherever the
panel shows groups next to the figure they add up to — service lines and respondent types against the scope's
tile, the matrix's cells against their row and column totals and its rows against the scope (responses without
a facility being a group never shown), the trend's periods against the tile and a line's periods against that
line and against the period's all-lines point, the SLA rates per priority and per line against their tile —
``protect`` also withholds the smallest shown group until the withheld groups of every such set together rest on
at least ``privacy.min_group_size`` people and no withheld figure is alone in its set. Each indicator is
protected on its own (NPS counts only the answers that gave a score). Counts (n, responses, orders) stay shown:
the rule assumes that everyone knows them, so showing them costs nothing. Percentiles are not protected this
way: a median cannot be recovered by subtraction.

Complaints per 1000 people rest on the population (students + staff of ``fact_school_year``): its ``n`` is the
population, not the orders. The number of complaints it reveals is a count of orders, shown anyway in the volume
chart, and says nothing about what anyone answered; the figures that do rest on the complaints themselves — their
closure — are withheld below 10 complaints due.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from . import registry
from .cache import memoize
from .config import get_config
from .dims import ancestors, org_tree
from .engine import read_df
from .period import Period
from .registry import AMBER, GREEN, NONE, SUPPRESSED, Indicator, Result, register, threshold_status
from .schema import fact_school_year, fact_survey_response, fact_work_order
from .scope import LEVELS, Scope, scope_school_fact, with_key
from .sqlfuncs import date_of, percentile_from_ranks, rank_within, ratio_sum, seconds_between

TABLES_SURVEY = ("fact_survey_response",)
TABLES_ORDERS = ("fact_work_order",)

# The contract's service lines, respondent types, order kinds and priorities, in display order.
SERVICE_LINES = ("dining", "dormitory", "property", "repair", "energy", "transport", "parcel", "commerce", "venue",
                 "other")
RESPONDENT_TYPES = ("student", "staff", "other")
ORDER_KINDS = ("repair", "complaint", "request")
PRIORITIES = ("urgent", "normal")
DIMENSIONS = ("service_line", "respondent_type", "kind", "priority")


# --- grouping -----------------------------------------------------------------------------------------------

def _parts(by) -> tuple:
    return () if by is None else (by,) if isinstance(by, str) else tuple(by)


def _group_keys(stmt, scope: Scope, table, by, day_col):
    """Scope a select over a school-keyed fact and return (stmt, grouping expressions) for ``by``."""
    parts = _parts(by)
    levels = [p for p in parts if p in LEVELS]
    if len(levels) > 1 or "association" in levels:
        raise ValueError(f"cannot group by {by!r}")
    stmt, level_key = scope_school_fact(stmt, scope, table.c.school_id, table.c.facility_id,
                                        levels[0] if levels else None)
    keys = []
    for p in parts:
        if p == "day":
            keys.append(day_col)
        elif p in LEVELS:
            keys.append(level_key)
        elif p in DIMENSIONS and p in table.c:
            keys.append(table.c[p])
        else:
            raise ValueError(f"cannot group {table.name} by {p!r}")
    return stmt, keys


def _scoped(stmt, scope, table, by, day_col):
    """An aggregate select scoped and grouped: one ``key`` column, or key0, key1 … for a tuple grouping."""
    stmt, keys = _group_keys(stmt, scope, table, by, day_col)
    if len(keys) == 1:
        return with_key(stmt, keys[0])
    for i, key in enumerate(keys):
        stmt = with_key(stmt, key, f"key{i}")
    return stmt


def _tuple_keys(frame: pd.DataFrame, by) -> pd.DataFrame:
    """Fold key0, key1 … into one ``key`` column of tuples (first column)."""
    n = len(_parts(by))
    if n < 2:
        return frame
    cols = [f"key{i}" for i in range(n)]
    keys = [tuple(None if pd.isna(v) else v for v in row) for row in frame[cols].itertuples(index=False)]
    frame = frame.drop(columns=cols)
    frame.insert(0, "key", pd.Series(keys, index=frame.index, dtype=object))
    return frame


def _measure_frame(frame: pd.DataFrame, num, den: str) -> pd.DataFrame:
    out = pd.DataFrame({"num": num(frame), "den": frame[den], "n": frame[den]})
    if "key" in frame.columns:
        out.insert(0, "key", frame["key"])
    return out


# --- satisfaction -------------------------------------------------------------------------------------------

@memoize()
def survey_totals(scope: Scope, period: Period, by=None) -> pd.DataFrame:
    """Responses, Σ CSI points, satisfied, NPS answers, promoters, detractors per group."""
    r = fact_survey_response
    stmt = sa.select(
        sa.func.count().label("responses"),
        sa.func.sum((r.c.score - 1) * 25.0).label("csi_points"),
        ratio_sum(r.c.score >= 4).label("satisfied"),
        sa.func.count(r.c.nps).label("nps_n"),
        ratio_sum(r.c.nps >= 9).label("promoters"),
        ratio_sum(r.c.nps <= 6).label("detractors"),
    ).select_from(r).where(r.c.submitted_on >= period.start, r.c.submitted_on <= period.end)
    return _tuple_keys(read_df(_scoped(stmt, scope, r, by, r.c.submitted_on)), by)


def _survey_measure(num, den):
    def measure(scope, period, by):
        return _measure_frame(survey_totals(scope, period, by), num, den)

    return measure


# --- work orders --------------------------------------------------------------------------------------------

def sla_hours(priority: str, kind: str) -> float:
    """The SLA of config service.sla in hours: kind 'response' or 'completion'."""
    sla = get_config().service.get("sla", {})
    default = {("urgent", "response"): 2, ("urgent", "completion"): 24,
               ("normal", "response"): 24, ("normal", "completion"): 72}[(priority, kind)]
    return float(sla.get(priority, {}).get("response_h" if kind == "response" else "completion_h", default))


def _sla_seconds(kind: str):
    """CASE priority → SLA seconds for 'response' or 'completion' (config service.sla)."""
    o = fact_work_order
    return sa.case((o.c.priority == "urgent", sla_hours("urgent", kind) * 3600),
                   else_=sla_hours("normal", kind) * 3600)


def state_at(period: Period) -> dt.datetime:
    """The moment open orders are read at: the start of the period's state date."""
    return dt.datetime.combine(period.state_date(get_config().today()), dt.time())


def responded():
    """When an order was answered: ``responded_at``, or for an order completed without a recorded response its
    ``completed_at`` — completing it answered it, at the latest then. The upper bound never flatters the SLA (such
    an order is on time only when completed within the response SLA), and the same order counts in the on-time
    rate and in the response P50/P90 alike, instead of being late in one and missing from the other."""
    o = fact_work_order
    return sa.func.coalesce(o.c.responded_at, o.c.completed_at)


@memoize()
def order_totals(scope: Scope, period: Period, by=None) -> pd.DataFrame:
    """Work orders created in the period: SLA counts, completions, callbacks, complaints, per group.

    An order still without a response (completion) counts as late once its SLA has run out by the state date;
    before that it is not yet due and is left out of that rate. A response exactly at the SLA is on time. An
    order completed without a recorded response was answered at its completion at the latest (``responded``).
    """
    o = fact_work_order
    at_lit = sa.literal(state_at(period), sa.DateTime())
    resp_s, comp_s = _sla_seconds("response"), _sla_seconds("completion")
    answered = responded()
    resp_due = sa.or_(answered.is_not(None), seconds_between(o.c.created_at, at_lit) >= resp_s)
    comp_due = sa.or_(o.c.completed_at.is_not(None), seconds_between(o.c.created_at, at_lit) >= comp_s)
    complaint = o.c.kind == "complaint"
    stmt = sa.select(
        sa.func.count().label("orders"),
        ratio_sum(resp_due).label("resp_due"),
        ratio_sum(sa.and_(answered.is_not(None),
                          seconds_between(o.c.created_at, answered) <= resp_s)).label("resp_ok"),
        ratio_sum(comp_due).label("comp_due"),
        ratio_sum(sa.and_(o.c.completed_at.is_not(None),
                          seconds_between(o.c.created_at, o.c.completed_at) <= comp_s)).label("comp_ok"),
        ratio_sum(o.c.completed_at.is_not(None)).label("completed"),
        ratio_sum(sa.and_(o.c.completed_at.is_not(None), o.c.callback_done)).label("callbacks"),
        ratio_sum(sa.and_(o.c.completed_at.is_not(None), o.c.kind == "repair")).label("repairs_done"),
        ratio_sum(sa.and_(o.c.completed_at.is_not(None), o.c.kind == "repair", o.c.reopened)).label("reopened"),
        sa.func.count(o.c.rating).label("rated"),
        ratio_sum(o.c.rating >= 4).label("rated_ok"),
        ratio_sum(complaint).label("complaints"),
        ratio_sum(sa.and_(complaint, comp_due)).label("complaints_due"),
        ratio_sum(sa.and_(complaint, o.c.completed_at.is_not(None))).label("complaints_closed"),
    ).select_from(o).where(o.c.created_at >= period.start, o.c.created_at < period.end_exclusive)
    return _tuple_keys(read_df(_scoped(stmt, scope, o, by, date_of(o.c.created_at))), by)


def _order_measure(num, den):
    def measure(scope, period, by):
        return _measure_frame(order_totals(scope, period, by), num, den)

    return measure


@memoize()
def order_durations(scope: Scope, period: Period, by=None) -> pd.DataFrame:
    """Median and 90th percentile of response and completion times (seconds) of the orders created in the
    period, per group: resp_n, resp_p50, resp_p90, comp_n, comp_p50, comp_p90.

    Over answered (completed) orders only: an order still open has no duration yet; it counts in the on-time
    rates once its SLA has run out, and in the open-order list. An order completed without a recorded response
    counts with its completion as its response (``responded``). Each group's percentile is computed over its
    own orders (sqlfuncs.rank_within / percentile_from_ranks: portable to every engine).
    """
    o = fact_work_order
    resp = seconds_between(o.c.created_at, responded())
    comp = seconds_between(o.c.created_at, o.c.completed_at)
    inner = sa.select().select_from(o).where(o.c.created_at >= period.start, o.c.created_at < period.end_exclusive)
    inner, keys = _group_keys(inner, scope, o, by, date_of(o.c.created_at))
    resp_rn, resp_cnt = rank_within(resp, keys)
    comp_rn, comp_cnt = rank_within(comp, keys)
    inner = inner.add_columns(
        *[k.label(f"key{i}") for i, k in enumerate(keys)],
        resp.label("resp"), resp_rn.label("resp_rn"), resp_cnt.label("resp_cnt"),
        comp.label("comp"), comp_rn.label("comp_rn"), comp_cnt.label("comp_cnt"),
    ).subquery("ranked")
    c = inner.c
    outer = sa.select(
        sa.func.count(c.resp).label("resp_n"),
        percentile_from_ranks(c.resp, c.resp_rn, c.resp_cnt, 0.5).label("resp_p50"),
        percentile_from_ranks(c.resp, c.resp_rn, c.resp_cnt, 0.9).label("resp_p90"),
        sa.func.count(c.comp).label("comp_n"),
        percentile_from_ranks(c.comp, c.comp_rn, c.comp_cnt, 0.5).label("comp_p50"),
        percentile_from_ranks(c.comp, c.comp_rn, c.comp_cnt, 0.9).label("comp_p90"),
    )
    key_cols = [c[f"key{i}"] for i in range(len(keys))]
    if len(keys) == 1:
        outer = outer.add_columns(key_cols[0].label("key")).group_by(key_cols[0])
    elif keys:
        outer = outer.add_columns(*key_cols).group_by(*key_cols)
    return _tuple_keys(read_df(outer), by)


def _duration_measure(metric: str, q: int):
    def measure(scope, period, by):
        frame = order_durations(scope, period, by)
        out = pd.DataFrame({"value": pd.to_numeric(frame[f"{metric}_p{q}"], errors="coerce") / 3600.0,
                            "n": frame[f"{metric}_n"]})
        if "key" in frame.columns:
            out.insert(0, "key", frame["key"])
        return out

    return measure


# --- complaints per 1000 people -----------------------------------------------------------------------------

@memoize()
def population(scope: Scope, year: int) -> pd.DataFrame:
    """Students + staff per school of the scope, from fact_school_year (latest year ≤ ``year``)."""
    y = fact_school_year
    latest = (sa.select(y.c.school_id, sa.func.max(y.c.year).label("year"))
              .where(y.c.year <= year, y.c.school_id.in_(scope.schools)).group_by(y.c.school_id).subquery("latest"))
    stmt = (sa.select(y.c.school_id, (y.c.students + y.c.staff).label("people"))
            .select_from(y.join(latest, sa.and_(latest.c.school_id == y.c.school_id, latest.c.year == y.c.year))))
    return read_df(stmt)


def _complaint_rates(scope: Scope, period: Period, by) -> pd.DataFrame:
    """Per group: complaints (num), people (den and n: the rate rests on the population, see the module's
    docstring) over the schools that have a population figure."""
    orders = order_totals(scope, period, "school")[["key", "orders", "complaints"]].rename(columns={"key": "school_id"})
    people = population(scope, period.end.year)
    frame = orders.merge(people, on="school_id", how="inner")
    frame = frame.loc[frame["people"] > 0]
    if by is None:
        return pd.DataFrame({"num": [frame["complaints"].sum()], "den": [frame["people"].sum()],
                             "n": [frame["people"].sum()]}) if not frame.empty else pd.DataFrame(columns=["num", "den", "n"])
    if by == "region":
        regions = org_tree().schools.set_index("school_id")["region_code"]
        frame = frame.assign(key=frame["school_id"].map(regions))
    else:
        frame = frame.assign(key=frame["school_id"])
    return (frame.groupby("key", as_index=False)
            .agg(num=("complaints", "sum"), den=("people", "sum"), n=("people", "sum")))


def _complaints_measure(scope: Scope, period: Period, by) -> pd.DataFrame:
    """Complaints per 1000 people, with the previous period's rate (same length) for the status rule."""
    if by not in (None, "region", "school"):
        return pd.DataFrame(columns=["key", "num", "den", "n"])
    cur = _complaint_rates(scope, period, by)
    prev = _complaint_rates(scope, period.previous(), by)
    prev = prev.assign(prev=1000.0 * prev["num"] / prev["den"].where(prev["den"] > 0),
                       prev_n=prev["n"])[([] if by is None else ["key"]) + ["prev", "prev_n"]]
    if by is None:
        if cur.empty:
            return cur
        cur = cur.assign(prev=prev["prev"].iloc[0] if not prev.empty else None,
                         prev_n=prev["prev_n"].iloc[0] if not prev.empty else 0)
        return cur
    return cur.merge(prev, on="key", how="left")


def _complaints_status(value, extra, scope, period):
    """Against the previous period: not higher is green, up to +amber % amber, more red (thresholds of
    service.complaints in config, in % change). Without a comparable previous figure: context only."""
    prev, prev_n = extra.get("prev"), extra.get("prev_n") or 0
    if value is None or prev is None or pd.isna(prev) or prev_n < get_config().min_group_size:
        return NONE
    if prev == 0:
        return GREEN if value == 0 else AMBER
    return threshold_status(registry.get("service.complaints"), 100.0 * (value / prev - 1.0))


# --- declarations -------------------------------------------------------------------------------------------

def _col(name):
    return lambda frame: frame[name]


_common = dict(domain="service", privacy=True, alert_grain="school")
register(Indicator(
    id="service.csi", name_zh="满意度指数", name_en="Satisfaction index (CSI)", unit="分", direction="higher",
    scale=1.0, measure=_survey_measure(_col("csi_points"), "responses"), tables=TABLES_SURVEY,
    formula_zh="各条评价 (评分 − 1) ÷ 4 × 100 的平均（按评价数加权）",
    formula_en="mean over responses of (score − 1) ÷ 4 × 100 (weighted by responses)", **_common,
))
register(Indicator(
    id="service.satisfied_rate", name_zh="满意率", name_en="Satisfied rate", unit="%", direction="higher",
    measure=_survey_measure(_col("satisfied"), "responses"), tables=TABLES_SURVEY,
    formula_zh="评分 ≥ 4 的评价 ÷ 评价数", formula_en="responses scoring ≥ 4 ÷ responses", **_common,
))
register(Indicator(
    id="service.nps", name_zh="净推荐值", name_en="Net promoter score", unit="", direction="higher",
    measure=_survey_measure(lambda f: f["promoters"] - f["detractors"], "nps_n"), tables=TABLES_SURVEY,
    formula_zh="推荐者(9–10)占比 − 贬损者(0–6)占比", formula_en="% scoring 9–10 − % scoring 0–6", **_common,
))
register(Indicator(
    id="service.response_on_time", name_zh="报修按时响应率", name_en="Responded within SLA", unit="%",
    direction="higher", measure=_order_measure(_col("resp_ok"), "resp_due"), tables=TABLES_ORDERS,
    formula_zh="在时限内响应的工单 ÷ 已到期工单（紧急2小时，一般24小时；未记录响应的已完工工单以完工时间为响应时间）",
    formula_en="orders responded within the SLA ÷ orders due (urgent 2 h, normal 24 h; an order completed without a "
               "recorded response was answered at its completion)", **_common,
))
register(Indicator(
    id="service.completion_on_time", name_zh="按时完工率", name_en="Completed within SLA", unit="%",
    direction="higher", measure=_order_measure(_col("comp_ok"), "comp_due"), tables=TABLES_ORDERS,
    formula_zh="在时限内完工的工单 ÷ 已到期工单（紧急24小时，一般72小时）",
    formula_en="orders completed within the SLA ÷ orders due (urgent 24 h, normal 72 h)", **_common,
))
register(Indicator(
    id="service.first_time_fix", name_zh="一次修复率", name_en="First-time fix rate", unit="%",
    direction="higher", measure=_order_measure(lambda f: f["repairs_done"] - f["reopened"], "repairs_done"),
    tables=TABLES_ORDERS, formula_zh="1 − 返修 ÷ 完成的维修", formula_en="1 − reopened ÷ completed repairs",
    **_common,
))
register(Indicator(
    id="service.callback_rate", name_zh="回访率", name_en="Callback rate", unit="%", direction="higher",
    measure=_order_measure(_col("callbacks"), "completed"), tables=TABLES_ORDERS,
    formula_zh="已回访 ÷ 已完成", formula_en="callbacks made ÷ orders completed", **_common,
))
register(Indicator(
    id="service.callback_satisfaction", name_zh="回访满意率", name_en="Callback satisfaction", unit="%",
    direction="higher", measure=_order_measure(_col("rated_ok"), "rated"), tables=TABLES_ORDERS,
    formula_zh="回访评分 ≥ 4 ÷ 有评分的回访", formula_en="callback ratings ≥ 4 ÷ rated callbacks", **_common,
))
_durations = dict(domain="service", privacy=True, alert_grain=None, kind="custom", unit="h", direction="lower",
                  tables=TABLES_ORDERS)
for _metric, _zh, _en, _what_zh, _what_en in (
    ("response", "响应时长", "Response time", "响应时间（未记录响应的已完工工单取完工时间）− 创建时间",
     "responded_at (completed_at for an order completed without a recorded response) − created_at"),
    ("completion", "完工时长", "Completion time", "完工时间 − 创建时间", "completed_at − created_at"),
):
    for _q, _qzh, _qen in ((50, "中位数", "median"), (90, "P90", "P90")):
        register(Indicator(
            id=f"service.{_metric}_p{_q}", name_zh=f"{_zh}{_qzh}", name_en=f"{_en} {_qen}",
            measure=_duration_measure("resp" if _metric == "response" else "comp", _q),
            formula_zh=f"期内创建且已{'响应' if _metric == 'response' else '完工'}的工单，{_what_zh} 的"
                       f"{'中位数' if _q == 50 else '第90百分位数'}（小时）",
            formula_en=f"{'median' if _q == 50 else '90th percentile'} of {_what_en} over the period's "
                       f"{'answered' if _metric == 'response' else 'completed'} orders, hours",
            **_durations,
        ))
register(Indicator(
    id="service.complaints", name_zh="每千人投诉量", name_en="Complaints per 1000 people", unit="‰",
    direction="lower", scale=1000.0, measure=_complaints_measure, status_rule=_complaints_status, change="rel",
    tables=TABLES_ORDERS + ("fact_school_year",), levels=("association", "region", "school"), decimals=2,
    formula_zh="期内投诉工单 ÷ (学生 + 教职工) × 1000；与上一同长周期比较",
    formula_en="complaint orders in the period ÷ (students + staff) × 1000; compared with the previous period",
    # Its status compares with the previous period, which swings with the calendar (a period after the National
    # Day week looks red everywhere): shown with its status on the panel, not raised in the alert list.
    **{**_common, "alert_grain": None},
))
register(Indicator(
    id="service.complaint_closure", name_zh="投诉办结率", name_en="Complaints closed", unit="%",
    direction="higher", measure=_order_measure(_col("complaints_closed"), "complaints_due"), tables=TABLES_ORDERS,
    formula_zh="已办结投诉 ÷ 已到期投诉（已办结或已超完工时限）",
    formula_en="complaints closed ÷ complaints due (closed, or past the completion SLA)", **_common,
))


# --- the panel's data ---------------------------------------------------------------------------------------

SATISFACTION = ("service.csi", "service.satisfied_rate", "service.nps")
ORDER_TILES = ("service.response_on_time", "service.completion_on_time", "service.response_p50",
               "service.response_p90", "service.completion_p50", "service.completion_p90",
               "service.first_time_fix", "service.callback_rate", "service.callback_satisfaction",
               "service.complaints", "service.complaint_closure")


def _ordered(keys, order) -> list:
    rank = {k: i for i, k in enumerate(order)}
    return sorted(keys, key=lambda k: (rank.get(k, len(order)), str(k)))


# --- complementary suppression ------------------------------------------------------------------------------

@dataclass
class Siblings:
    """Groups shown next to the figure they add up to: ``parent`` over the people of ``members`` and of
    ``rest_n`` further people who belong to no member and whose figure is never shown (responses without a
    facility). Σ(member × n) + rest × rest_n = parent × n, so a member that is withheld while its parent and its
    other siblings are shown could be recovered by subtraction."""
    parent: Result
    members: list[Result]
    rest_n: int = 0


def _hidden(res: Result) -> bool:
    return res.status == SUPPRESSED


def _shown(res: Result) -> bool:
    return res.status != SUPPRESSED and res.value is not None


def withhold(res: Result) -> None:
    """Withhold a figure in place for complementary suppression: no value, status "suppressed", n kept."""
    res.value = res.num = res.den = None
    res.status = SUPPRESSED
    res.extra = {"complementary": True}


def protect(sets: list[Siblings], min_n: int | None = None) -> list[Result]:
    """Complementary suppression over every set of siblings at once (a Result may sit in several sets: a line's
    total is a member against the scope and the parent of its matrix column); returns what it withheld.

    For each set whose parent is shown: when the withheld members (with the rest) together rest on fewer than
    ``min_n`` people (config privacy.min_group_size), or exactly one member is withheld (it would be the parent
    minus the others), the smallest shown member (fewest people, then key) is withheld too. For a set whose
    parent is withheld, the parent must not be the sum of shown members: if none is withheld, its smallest is.
    A member alone in its set can only be covered by withholding its parent, which is done unless the parent is
    a set's top (a member of no set: the scope's own tile, which stays as it is). A set is checked again whenever
    one of its figures is withheld, until none needs more (it only ever withholds, so it ends)."""
    min_n = get_config().min_group_size if min_n is None else min_n
    where: dict[int, list[int]] = {}           # id(Result) → the sets it is in (as a member or the parent)
    for i, s in enumerate(sets):
        for res in (s.parent, *s.members):
            where.setdefault(id(res), []).append(i)
    members = {id(m) for s in sets for m in s.members}
    withheld: list[Result] = []
    todo, queued = list(range(len(sets)))[::-1], set(range(len(sets)))
    while todo:
        i = todo.pop()
        queued.discard(i)
        s = sets[i]
        hid = [m for m in s.members if _hidden(m)]
        shown = sorted((m for m in s.members if _shown(m)), key=lambda m: (m.n or 0, str(m.key)))
        if _hidden(s.parent):
            need = not hid and not s.rest_n and bool(shown)
        elif not _shown(s.parent) or (not hid and not s.rest_n):
            need = False
        else:
            need = sum(int(m.n or 0) for m in hid) + s.rest_n < min_n or (len(hid) == 1 and not s.rest_n)
        if not need:
            continue
        if shown:
            target = shown[0]
        elif not _hidden(s.parent) and id(s.parent) in members:
            target = s.parent
        else:
            continue
        withhold(target)
        withheld.append(target)
        for j in where[id(target)]:
            if j not in queued:
                queued.add(j)
                todo.append(j)
    return withheld


@dataclass
class LineRow:
    """One group (a service line, a respondent type) with its satisfaction results and the CSI change."""
    key: str
    results: dict[str, Result]          # indicator id → Result
    previous: Result                    # CSI in the previous period
    change: float | None                # CSI now − CSI before, when both are shown

    @property
    def responses(self) -> int:
        return int(self.results["service.csi"].n or 0)


def satisfaction_rows(scope: Scope, period: Period, by: str) -> list[LineRow]:
    """Satisfaction per service line or respondent type, with the change of CSI against the previous period.

    The figures are those of ``satisfaction_figures`` (complementary suppression included); the previous
    period's CSI per group is protected against the previous period's tile (the change column and the movers
    show it: now − change)."""
    if by not in ("service_line", "respondent_type"):
        raise ValueError(f"satisfaction rows by {by!r}: service_line or respondent_type")
    found: dict[str, dict[str, Result]] = {}
    for ind_id in SATISFACTION:
        figures = satisfaction_figures(ind_id, scope, period)
        for key, res in (figures.lines if by == "service_line" else figures.types).items():
            found.setdefault(key, {})[ind_id] = res
    before = {r.key: r for r in registry.breakdown("service.csi", scope, period.previous(), by)}
    protect([Siblings(registry.evaluate("service.csi", scope, period.previous()), list(before.values()))])
    rows = []
    order = SERVICE_LINES if by == "service_line" else RESPONDENT_TYPES
    for key in _ordered(found, order):
        prev = before.get(key) or Result("service.csi", None, "nodata", 0)
        cur = found[key]["service.csi"]
        change = cur.value - prev.value if cur.value is not None and prev.value is not None else None
        rows.append(LineRow(key, found[key], prev, change))
    return rows


def biggest_movers(rows: list[LineRow], limit: int = 5) -> list[LineRow]:
    """The service lines whose CSI changed most since the previous period (both periods shown, not suppressed)."""
    moved = [r for r in rows if r.change is not None]
    return sorted(moved, key=lambda r: (-abs(r.change), r.key))[:limit]


@dataclass
class Matrix:
    level: str                               # school | facility: what the rows are
    lines: list[str]                         # columns
    rows: list[tuple[str, dict[str, Result], Result]]   # (child key, line → Result, child total)
    totals: dict[str, Result]                # line → Result over the whole scope
    unattributed: int                        # responses without a facility (facility rows only)


def matrix_level(scope: Scope) -> str | None:
    """Rows of the service line matrix: schools above school level, facilities at school and campus level."""
    return {"association": "school", "region": "school", "school": "facility", "campus": "facility"}.get(scope.level)


def matrix(indicator_id: str, scope: Scope, period: Period) -> Matrix | None:
    """The indicator per child × service line (each cell computed over its own responses), its totals protected
    together with the lines table and the trend (``satisfaction_figures``)."""
    level = matrix_level(scope)
    if level is None:
        return None
    figures = satisfaction_figures(indicator_id, scope, period)
    unattributed = sum(figures.unattributed.values())
    if not figures.cells:
        return Matrix(level, [], [], {}, unattributed)
    cells: dict[str, dict[str, Result]] = {}
    for (child, line), res in figures.cells.items():
        cells.setdefault(child, {})[line] = res
    lines = _ordered({line for row in cells.values() for line in row}, SERVICE_LINES)
    rows = [(child, cells[child], figures.rows.get(child) or Result(indicator_id, None, "nodata", 0))
            for child in sorted(cells)]
    # Worst first (the indicators here are all "higher is better"); suppressed and empty totals last.
    rows.sort(key=lambda r: (r[2].value is None, r[2].value if r[2].value is not None else 0.0))
    return Matrix(level, lines, rows, dict(figures.lines), unattributed)


def _resample(frame: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Daily num/den/n summed to weeks (starting Monday) or months, like registry.series."""
    frame = frame.copy()
    frame["key"] = pd.to_datetime(frame["key"])
    frame = frame.sort_values("key")
    if freq != "D":
        cols = [c for c in ("num", "den", "n") if c in frame.columns]
        frame = frame.set_index("key")[cols].resample("W-MON" if freq == "W" else "MS", label="left",
                                                      closed="left").sum(min_count=1).reset_index()
    frame["key"] = frame["key"].dt.date.map(lambda d: d.isoformat())
    return frame


def trend_freq(period: Period) -> str:
    """Daily satisfaction rests on few responses: days only for short periods, months for long ones."""
    return "D" if period.days <= 14 else "W" if period.days <= 400 else "M"


TREND = ("service.csi", "service.satisfied_rate")


@dataclass
class SatisfactionFigures:
    """One satisfaction indicator at a scope and period, every figure the panel can show of it (for any choice of
    the page's options: matrix indicator, trend line), after complementary suppression over all of them."""
    total: Result                            # the scope's tile
    lines: dict[str, Result]                 # service line → Result (the lines table, the matrix's total row)
    types: dict[str, Result]                 # respondent type → Result
    rows: dict[str, Result]                  # matrix child → its total
    cells: dict[tuple, Result]               # (child, service line) → Result
    unattributed: dict[str, int]             # service line → n without a facility (facility rows only)
    freq: str
    trend: list[Result]                      # all lines, per day / week / month
    line_trend: dict[str, list[Result]]      # service line → its points


@memoize()
def satisfaction_figures(indicator_id: str, scope: Scope, period: Period) -> SatisfactionFigures:
    """Computes and protects (``protect``) the figures of one satisfaction indicator. The sets of siblings:
    lines and types against the tile; the matrix rows against the tile (the responses without a facility as the
    rest), each row's cells against the row, each line's cells against the line (its responses without a
    facility as the rest); the trend's points against the tile; each line's points against the line and, per
    point in time, the lines' points against the all-lines point. Always all of them, whatever the page shows:
    the same figures come out whichever matrix indicator or trend line is chosen."""
    ind = registry.get(indicator_id)
    total = registry.evaluate(indicator_id, scope, period)
    lines = {r.key: r for r in registry.breakdown(indicator_id, scope, period, "service_line")}
    types = {r.key: r for r in registry.breakdown(indicator_id, scope, period, "respondent_type")}
    sets = [Siblings(total, list(lines.values())), Siblings(total, list(types.values()))]
    rows: dict[str, Result] = {}
    cells: dict[tuple, Result] = {}
    unattributed: dict[str, int] = {}
    level = matrix_level(scope)
    if level is not None:
        frame = ind.measure(scope, period, (level, "service_line"))
        for res in registry.results(indicator_id, frame, scope, period):
            child, line = res.key
            if child is None:
                unattributed[line] = unattributed.get(line, 0) + int(res.n or 0)
            else:
                cells[(child, line)] = res
        rows = {r.key: r for r in registry.breakdown(indicator_id, scope, period, level) if r.key is not None}
        sets.append(Siblings(total, [rows[k] for k in sorted(rows)], sum(unattributed.values())))
        by_row: dict[str, list[Result]] = {}
        by_line: dict[str, list[Result]] = {}
        for (child, line), res in sorted(cells.items(), key=lambda kv: str(kv[0])):
            by_row.setdefault(child, []).append(res)
            by_line.setdefault(line, []).append(res)
        sets += [Siblings(rows[child], by_row.get(child, [])) for child in sorted(rows)]
        sets += [Siblings(lines[line], by_line.get(line, []), unattributed.get(line, 0))
                 for line in _ordered(lines, SERVICE_LINES)]
    freq = trend_freq(period)
    trend: list[Result] = []
    line_trend: dict[str, list[Result]] = {}
    if indicator_id in TREND:
        trend = registry.series(indicator_id, scope, period, freq)
        sets.append(Siblings(total, trend))
        frame = ind.measure(scope, period, ("day", "service_line"))
        for line in _ordered(lines, SERVICE_LINES) if not frame.empty else []:
            part = frame.loc[frame["key"].map(lambda k: k[1] == line)].copy()
            part["key"] = part["key"].map(lambda k: k[0])
            line_trend[line] = registry.results(indicator_id, _resample(part, freq), scope, period) \
                if not part.empty else []
            sets.append(Siblings(lines[line], line_trend[line]))
        for point in trend:
            sets.append(Siblings(point, [p for line in _ordered(line_trend, SERVICE_LINES)
                                         for p in line_trend[line] if p.key == point.key]))
    protect(sets)
    return SatisfactionFigures(total, lines, types, rows, cells, unattributed, freq, trend, line_trend)


def satisfaction_trend(scope: Scope, period: Period, line: str | None = None) -> tuple[str, dict[str, list[Result]]]:
    """(freq, indicator id → points) of CSI and satisfied rate, for all lines or one service line."""
    out = {}
    for ind_id in TREND:
        figures = satisfaction_figures(ind_id, scope, period)
        out[ind_id] = figures.trend if line is None else figures.line_trend.get(line, [])
    return trend_freq(period), out


def surveyed_lines(scope: Scope, period: Period) -> list[str]:
    """Service lines with any response in the scope and period (the trend's line selector)."""
    return _ordered(set(survey_totals(scope, period, "service_line")["key"]), SERVICE_LINES)


def breakdown_map(ind_ids, scope: Scope, period: Period, by) -> dict:
    """{group key: {indicator id: Result}} for several indicators broken down the same way."""
    out: dict = {}
    for ind_id in ind_ids:
        for res in registry.breakdown(ind_id, scope, period, by):
            out.setdefault(res.key, {})[ind_id] = res
    return out


ORDER_TABLE = ("service.response_on_time", "service.completion_on_time", "service.response_p50",
               "service.response_p90", "service.completion_p50", "service.completion_p90")


ADDITIVE_ORDER = ("service.response_on_time", "service.completion_on_time")
"""The order table's rates (Σ num ÷ Σ den), protected against their tile; its percentiles cannot be subtracted."""


def orders_by(scope: Scope, period: Period, by: str) -> list[tuple[str, int, dict[str, Result]]]:
    """(group, orders created, indicator id → Result) per priority or service line; the on-time rates protected
    against the scope's tile (``protect``)."""
    counts = order_totals(scope, period, by)
    results = breakdown_map(ORDER_TABLE, scope, period, by)
    groups = [results[k] for k in sorted(results, key=str)]
    protect([Siblings(registry.evaluate(i, scope, period), [g[i] for g in groups if i in g]) for i in ADDITIVE_ORDER])
    order = PRIORITIES if by == "priority" else SERVICE_LINES
    n = dict(zip(counts["key"], counts["orders"])) if not counts.empty else {}
    return [(k, int(n.get(k, 0)), results.get(k, {})) for k in _ordered(n, order)]


def volume(scope: Scope, period: Period) -> pd.DataFrame:
    """Orders created per service line and kind: service_line, kind, orders (counts, not suppressed)."""
    frame = order_totals(scope, period, ("service_line", "kind"))
    if frame.empty:
        return pd.DataFrame(columns=["service_line", "kind", "orders"])
    return pd.DataFrame({"service_line": frame["key"].map(lambda k: k[0]), "kind": frame["key"].map(lambda k: k[1]),
                         "orders": frame["orders"].astype(int)})


# --- open and overdue orders --------------------------------------------------------------------------------

def _open_select(scope: Scope, period: Period):
    """Orders open at the state date (created before it, not completed by it), with their age in seconds."""
    o = fact_work_order
    at = state_at(period)
    at_lit = sa.literal(at, sa.DateTime())
    age = seconds_between(o.c.created_at, at_lit)
    answered = sa.and_(o.c.responded_at.is_not(None), o.c.responded_at < at_lit)
    comp_late = age >= _sla_seconds("completion")
    resp_late = sa.and_(sa.not_(answered), age >= _sla_seconds("response"))
    stmt = sa.select().select_from(o).where(
        o.c.created_at < at_lit, sa.or_(o.c.completed_at.is_(None), o.c.completed_at >= at_lit))
    stmt, _ = scope_school_fact(stmt, scope, o.c.school_id, o.c.facility_id, None)
    return stmt, age, answered, comp_late, resp_late


@memoize()
def open_order_counts(scope: Scope, period: Period) -> dict:
    """{"open", "overdue" (past the completion SLA), "unanswered_late" (no response past the response SLA)}."""
    stmt, _age, _answered, comp_late, resp_late = _open_select(scope, period)
    stmt = stmt.add_columns(sa.func.count().label("open"), ratio_sum(comp_late).label("overdue"),
                            ratio_sum(resp_late).label("unanswered_late"))
    row = read_df(stmt).iloc[0]
    return {k: int(row[k] or 0) for k in ("open", "overdue", "unanswered_late")}


@memoize()
def open_orders(scope: Scope, period: Period, limit: int = 100) -> pd.DataFrame:
    """The open orders at the state date, most overdue first: order_id, school_id, facility_id, kind,
    service_line, priority, created_at, answered (bool), age_h, over_h (hours past the completion SLA, < 0 when
    not yet due), overdue, unanswered_late. No requester, text or rating: nothing about a person."""
    o = fact_work_order
    stmt, age, answered, comp_late, resp_late = _open_select(scope, period)
    over = age - _sla_seconds("completion")
    stmt = (stmt.add_columns(o.c.order_id, o.c.school_id, o.c.facility_id, o.c.kind, o.c.service_line,
                             o.c.priority, o.c.created_at,
                             sa.case((answered, 1), else_=0).label("answered"), age.label("age_s"),
                             over.label("over_s"), sa.case((comp_late, 1), else_=0).label("overdue"),
                             sa.case((resp_late, 1), else_=0).label("unanswered_late"))
            .order_by(over.desc(), o.c.order_id).limit(limit))
    frame = read_df(stmt)
    frame["age_h"] = pd.to_numeric(frame.pop("age_s")) / 3600.0
    frame["over_h"] = pd.to_numeric(frame.pop("over_s")) / 3600.0
    for col in ("answered", "overdue", "unanswered_late"):
        frame[col] = frame[col].astype(int).astype(bool)
    return frame


def facility_names(ids) -> dict[str, str]:
    """Names of facilities (the open-order list, the matrix rows)."""
    f = org_tree().facilities
    hit = f.loc[f.facility_id.isin([i for i in ids if i])]
    return dict(zip(hit.facility_id, hit.facility_name))


# --- the whole panel ----------------------------------------------------------------------------------------

@dataclass
class Panel:
    """Everything the service page (and its export) shows for one scope, period and choice of options."""
    scope: Scope
    period: Period
    line: str | None                    # the trend's service line (None: all)
    metric: str                         # the matrix's indicator
    tiles: dict                         # indicator id → registry.Tile
    as_of: dict                         # "survey" / "orders" → meta.as_of
    lines: list[LineRow]
    types: list[LineRow]
    movers: list[LineRow]
    trend_freq: str
    trend: dict[str, list[Result]]
    surveyed_lines: list[str]
    matrix: Matrix | None
    orders: int
    by_priority: list
    by_line: list
    sla: dict[str, tuple[float, float]]  # priority → (response h, completion h)
    volume: pd.DataFrame
    open_counts: dict
    open_list: pd.DataFrame
    state_at: dt.datetime
    names: dict                         # (level, id) → display name, for rows and places


def panel(scope: Scope, period: Period, line: str | None = None, metric: str = "service.csi",
          lang: str = "zh", open_limit: int = 100) -> Panel:
    from . import meta

    line = line if line in SERVICE_LINES else None
    metric = metric if metric in SATISFACTION else "service.csi"
    lines = satisfaction_rows(scope, period, "service_line")
    freq, trend = satisfaction_trend(scope, period, line)
    mat = matrix(metric, scope, period)
    open_list = open_orders(scope, period, open_limit)
    tree = org_tree()
    names = {("school", s): tree.name("school", s, lang) for s in scope.schools}
    names[("scope", None)] = " › ".join(name for _, name, _ in ancestors(scope, lang) if name)
    names.update({("facility", k): v for k, v in facility_names(open_list["facility_id"]).items()})
    if mat is not None:
        names.update({(mat.level, k): tree.name(mat.level, k, lang) for k, _, _ in mat.rows})
    totals = order_totals(scope, period)
    return Panel(
        scope=scope, period=period, line=line, metric=metric,
        tiles={i: registry.tile(i, scope, period) for i in SATISFACTION + ORDER_TILES},
        as_of={"survey": meta.as_of(scope, TABLES_SURVEY), "orders": meta.as_of(scope, TABLES_ORDERS)},
        lines=lines, types=satisfaction_rows(scope, period, "respondent_type"), movers=biggest_movers(lines),
        trend_freq=freq, trend=trend, surveyed_lines=surveyed_lines(scope, period), matrix=mat,
        orders=int(totals["orders"].sum()) if not totals.empty else 0,
        by_priority=orders_by(scope, period, "priority"), by_line=orders_by(scope, period, "service_line"),
        sla={p: (sla_hours(p, "response"), sla_hours(p, "completion")) for p in PRIORITIES},
        volume=volume(scope, period), open_counts=open_order_counts(scope, period), open_list=open_list,
        state_at=state_at(period), names=names,
    )
