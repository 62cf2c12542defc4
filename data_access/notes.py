"""Meeting notes and action items of the weekly review, in the cockpit's own database (data_access.appdb; never
the warehouse).

An item is attached to a scope (the place the review was about) and optionally to an indicator, and belongs to
the review week it was written in. Notes (纪要) and action items (待办) both have a status; an item is carried
forward into every later week's review until it is closed (done or cancelled), and a closed item still shows in
the week it was closed (and in the weeks before), so an old week's review reads as it did then. A review shows
the items of its scope and of every place inside it (a school's review lists its canteens' actions too).

Every change is recorded with who and when (``review_item_event``). Until accounts exist, "who" is the session's
display name if any, else 匿名/anonymous: ``current_user_name`` is the one function the security work replaces.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from . import appdb
from .errors import AppDatabaseError, InputError
from .scope import PARAMS, Scope

logger = logging.getLogger(__name__)

KINDS = ("note", "action")
STATUSES = ("open", "in_progress", "done", "cancelled")
CLOSED = ("done", "cancelled")
ANONYMOUS = "匿名/anonymous"
MAX_TEXT = 2000
MAX_OWNER = 100

review_item = sa.Table(
    "review_item", appdb.metadata,
    sa.Column("item_id", sa.String(32), primary_key=True),      # uuid4 hex: no SERIAL (DuckDB), no guessing
    sa.Column("kind", sa.String(16), nullable=False),           # note | action
    sa.Column("scope_level", sa.String(16), nullable=False),
    sa.Column("region", sa.String(64)),                         # the scope's URL parameters (parents included)
    sa.Column("school", sa.String(64)),
    sa.Column("campus", sa.String(64)),
    sa.Column("facility", sa.String(64)),
    sa.Column("indicator_id", sa.String(64)),                   # None: about the scope as a whole
    sa.Column("week", sa.String(8), nullable=False),            # review week written in, e.g. 2026-W46
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("owner", sa.String(MAX_OWNER)),                   # a role or a name, typed by the user
    sa.Column("due_on", sa.Date),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("closed_week", sa.String(8)),                     # review week it was closed in
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("updated_by", sa.String(200), nullable=False),
    sa.Index("ix_review_item_school_week", "school", "week"),
)

review_item_event = sa.Table(
    "review_item_event", appdb.metadata,
    sa.Column("event_id", sa.String(32), primary_key=True),     # sorts in time order (_event_id)
    sa.Column("item_id", sa.String(32), nullable=False, index=True),
    sa.Column("changed_at", sa.DateTime, nullable=False),       # (not "at"/"by": reserved words in DuckDB)
    sa.Column("changed_by", sa.String(200), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),         # create | update
    sa.Column("week", sa.String(8), nullable=False),            # the review week the change was made from
    sa.Column("changes", sa.Text, nullable=False),              # JSON {field: [old, new]}
)

_TABLES = (review_item, review_item_event)
_ready: set[str] = set()
_lock = threading.Lock()


def current_user_name() -> str:
    """Who is writing: the logged-in user when the accounts work knows one (data_access.request), else the
    session's display name if any, else 匿名/anonymous. This is the one function the accounts work replaces."""
    try:
        from . import request as _request

        known = getattr(_request, "current_user_name", None)
        name = known() if known is not None else None
        if isinstance(name, str) and name.strip() and name != "anonymous":
            return name.strip()[:200]
    except Exception:  # no identity machinery here: fall back to the session
        logger.debug("no identity for current_user_name", exc_info=True)
    try:
        from flask import has_request_context, session

        if has_request_context():
            name = session.get("display_name")
            if isinstance(name, str) and name.strip():
                return name.strip()[:200]
    except Exception:  # no session (no secret key, a CLI): anonymous
        logger.debug("no session for current_user_name", exc_info=True)
    return ANONYMOUS


def _engine() -> sa.Engine:
    """The app database with this module's tables (created on first use, once per URL and process: the app
    engine may have been created before this module was imported)."""
    engine = appdb.app_engine()
    key = str(engine.url)
    if key not in _ready:
        with _lock:
            if key not in _ready:
                appdb.metadata.create_all(engine, tables=list(_TABLES), checkfirst=True)
                _ready.add(key)
    return engine


def reset() -> None:
    """Forget which databases have the tables (tests that switch the app database)."""
    with _lock:
        _ready.clear()


@dataclass(frozen=True)
class Item:
    item_id: str
    kind: str
    scope_level: str
    place: dict            # the scope's URL parameters
    indicator_id: str | None
    week: str
    text: str
    owner: str | None
    due_on: dt.date | None
    status: str
    closed_week: str | None
    created_at: dt.datetime
    created_by: str
    updated_at: dt.datetime
    updated_by: str
    carried: bool = False  # written in an earlier week than the one reviewed
    overdue: bool = False  # open, due before the reviewed week's last day (in a week in progress: before today)

    @property
    def closed(self) -> bool:
        return self.status in CLOSED


def _now() -> dt.datetime:
    return dt.datetime.now().replace(microsecond=0)


def _clean_text(text: str | None) -> str:
    text = (text or "").strip()
    if not text:
        raise InputError("请填写内容", "the text is empty")
    if len(text) > MAX_TEXT:
        raise InputError(f"内容过长（最多 {MAX_TEXT} 字）", f"text too long (at most {MAX_TEXT} characters)")
    return text


def _clean_owner(owner: str | None) -> str | None:
    owner = (owner or "").strip() or None
    if owner and len(owner) > MAX_OWNER:
        raise InputError(f"负责人过长（最多 {MAX_OWNER} 字）", f"owner too long (at most {MAX_OWNER} characters)")
    return owner


def _clean_due(due) -> dt.date | None:
    if due in (None, ""):
        return None
    if isinstance(due, dt.datetime):
        return due.date()
    if isinstance(due, dt.date):
        return due
    try:
        return dt.date.fromisoformat(str(due)[:10])
    except ValueError:
        raise InputError(f"截止日期无效：{str(due)[:20]!r}", f"invalid due date: {str(due)[:20]!r}") from None


def _check_status(status: str) -> str:
    if status not in STATUSES:
        raise InputError(f"未知状态：{str(status)[:20]}", f"unknown status: {str(status)[:20]}")
    return status


def _check_week(week: str) -> str:
    from .review import IsoWeek  # the week arithmetic lives there

    return str(IsoWeek.parse(week))


@contextlib.contextmanager
def _transaction():
    """A write transaction on the app database; a database failure surfaces as ``AppDatabaseError``."""
    try:
        with _engine().begin() as conn:
            yield conn
    except sa.exc.SQLAlchemyError as exc:
        raise AppDatabaseError(f"app database: {type(exc).__name__}") from exc


def add_item(scope: Scope, week: str, kind: str, text: str, *, indicator_id: str | None = None,
             owner: str | None = None, due_on=None, status: str = "open", who: str | None = None,
             now: dt.datetime | None = None) -> str:
    """Record a note or an action item for a scope's review week; returns its id. An action needs an owner and
    a due date."""
    if kind not in KINDS:
        raise InputError(f"未知类型：{str(kind)[:20]}", f"unknown kind: {str(kind)[:20]}")
    if indicator_id:
        from .registry import all_indicators

        if indicator_id not in {i.id for i in all_indicators()}:
            raise InputError(f"未知指标：{indicator_id[:64]}", f"unknown indicator: {indicator_id[:64]}")
    week = _check_week(week)
    text, owner, due_on, status = _clean_text(text), _clean_owner(owner), _clean_due(due_on), _check_status(status)
    if kind == "action" and (not owner or due_on is None):
        raise InputError("待办事项需要负责人和截止日期", "an action item needs an owner and a due date")
    who = who or current_user_name()
    now = now or _now()
    item_id = uuid.uuid4().hex
    row = {"item_id": item_id, "kind": kind, "scope_level": scope.level, **{k: getattr(scope, k) for k in PARAMS},
           "indicator_id": indicator_id or None, "week": week, "text": text, "owner": owner, "due_on": due_on,
           "status": status, "closed_week": week if status in CLOSED else None,
           "created_at": now, "created_by": who, "updated_at": now, "updated_by": who}
    with _transaction() as conn:
        conn.execute(review_item.insert().values(**row))
        conn.execute(review_item_event.insert().values(
            event_id=_event_id(), item_id=item_id, changed_at=now, changed_by=who, action="create", week=week,
            changes=json.dumps({k: [None, _jsonable(row[k])] for k in ("kind", "text", "owner", "due_on", "status",
                                                                      "indicator_id")}, ensure_ascii=False)))
    logger.info("review item %s (%s) added for %s %s by %s", item_id, kind, scope.level, scope.key(), who)
    return item_id


def update_item(item_id: str, week: str, *, scope: Scope | None = None, status: str | None = None,
                text: str | None = None, owner: str | None = None, due_on=None, who: str | None = None,
                now: dt.datetime | None = None) -> bool:
    """Change an item from the review of ``week``. Closing it records that week as the week it was closed in
    (never earlier than the item's own week); reopening clears it. With ``scope``, an item outside it is refused.
    Returns False when nothing changed."""
    week = _check_week(week)
    with _transaction() as conn:
        row = conn.execute(sa.select(review_item).where(review_item.c.item_id == str(item_id))).mappings().first()
        if row is None:
            raise InputError("未找到该纪要或待办", "no such note or action item")
        if scope is not None and not _inside(row, scope):
            raise InputError("该纪要不属于当前范围", "this item is outside the current scope")
        changes: dict = {}
        values: dict = {}
        if status is not None and _check_status(status) != row["status"]:
            values["status"] = status
            values["closed_week"] = max(week, row["week"]) if status in CLOSED else None
        if text is not None and _clean_text(text) != row["text"]:
            values["text"] = _clean_text(text)
        if owner is not None and _clean_owner(owner) != row["owner"]:
            values["owner"] = _clean_owner(owner)
        if due_on is not None and _clean_due(due_on) != row["due_on"]:
            values["due_on"] = _clean_due(due_on)
        if not values:
            return False
        if row["kind"] == "action" and ("owner" in values and not values["owner"]):
            raise InputError("待办事项需要负责人", "an action item needs an owner")
        for k, v in values.items():
            changes[k] = [_jsonable(row[k]), _jsonable(v)]
        who = who or current_user_name()
        now = now or _now()
        values.update(updated_at=now, updated_by=who)
        conn.execute(review_item.update().where(review_item.c.item_id == row["item_id"]).values(**values))
        conn.execute(review_item_event.insert().values(
            event_id=_event_id(), item_id=row["item_id"], changed_at=now, changed_by=who, action="update", week=week,
            changes=json.dumps(changes, ensure_ascii=False)))
    return True


def _event_id() -> str:
    """32 characters that sort in the order events happened (nanoseconds, then random)."""
    return f"{time.time_ns():020d}{uuid.uuid4().hex[:12]}"


def _jsonable(v):
    return v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v


def _inside(row, scope: Scope) -> bool:
    """Whether an item's place lies inside the scope (and inside the caller's schools)."""
    for k, v in scope.params().items():
        if row[k] != v:
            return False
    if not scope.schools:
        return False
    return row["school"] in scope.schools if row["school"] else _covers(set(scope.schools), row["region"])


def _covers(schools: set[str], region: str | None) -> bool:
    """Whether ``schools`` include every school of a region (of the association when region is None)."""
    from .dims import org_tree

    tree = org_tree().schools
    wanted = tree["school_id"] if region is None else tree.loc[tree["region_code"] == region, "school_id"]
    return set(wanted) <= schools


def items_for(scope: Scope, week: str, week_end: dt.date | None = None, today: dt.date | None = None) -> list[Item]:
    """The items a scope's review of ``week`` shows: written in that week or before, at the scope or inside it,
    and not closed before that week. Open items first (overdue first), then by due date and age.

    An open item is overdue when its due date lies before the reviewed week's last day — due on that day is not
    overdue yet — and, in a week still in progress, before today (due tomorrow is not overdue today)."""
    week = _check_week(week)
    if week_end is None:
        from .review import IsoWeek

        week_end = IsoWeek.parse(week).end
    if today is None:
        from .config import get_config

        today = get_config().today()
    deadline = min(week_end, today)       # due before this day: overdue
    if not scope.schools:   # default deny: a scope without schools sees nothing
        return []
    t = review_item
    stmt = sa.select(t).where(t.c.week <= week, sa.or_(t.c.closed_week.is_(None), t.c.closed_week >= week))
    for k, v in scope.params().items():
        stmt = stmt.where(t.c[k] == v)
    # only places among the caller's schools (an item above school level carries no school)
    stmt = stmt.where(sa.or_(t.c.school.is_(None), t.c.school.in_(scope.schools)))
    with _engine().connect() as conn:
        rows = conn.execute(stmt).mappings().all()
    out = []
    visible = set(scope.schools)
    for r in rows:
        if r["school"] is None and not _covers(visible, r["region"]):
            continue   # a region's or the association's item may speak of any of its schools: only for those seeing all
        due = r["due_on"]
        if isinstance(due, dt.datetime):
            due = due.date()
        out.append(Item(
            item_id=r["item_id"], kind=r["kind"], scope_level=r["scope_level"],
            place={k: r[k] for k in PARAMS if r[k]}, indicator_id=r["indicator_id"], week=r["week"], text=r["text"],
            owner=r["owner"], due_on=due, status=r["status"], closed_week=r["closed_week"],
            created_at=r["created_at"], created_by=r["created_by"], updated_at=r["updated_at"],
            updated_by=r["updated_by"], carried=r["week"] < week,
            overdue=r["status"] not in CLOSED and due is not None and due < deadline))
    out.sort(key=lambda i: (i.closed, not i.overdue, i.kind != "action", i.due_on or dt.date.max, i.created_at))
    return out


def events(item_id: str) -> list[dict]:
    """The history of an item, oldest first: changed_at, changed_by, action, week, changes."""
    e = review_item_event
    with _engine().connect() as conn:
        rows = conn.execute(sa.select(e).where(e.c.item_id == str(item_id)).order_by(e.c.event_id)).mappings().all()
    return [{**dict(r), "changes": json.loads(r["changes"])} for r in rows]
