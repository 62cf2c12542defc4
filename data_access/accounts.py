"""Accounts, roles and their data scopes; API and wall-screen tokens; the audit log. And the account CLI:

    python -m data_access.accounts add NAME --role ROLE [--school ID | --region CODE | --facility ID]
                                       [--display NAME] [--cas-user ID] [--password-stdin]
    python -m data_access.accounts list
    python -m data_access.accounts disable NAME
    python -m data_access.accounts enable NAME
    python -m data_access.accounts token NAME [--label TEXT]
    python -m data_access.accounts screen-token (--school ID | --region CODE | --facility ID) [--label TEXT]
    python -m data_access.accounts list-tokens [--all]
    python -m data_access.accounts revoke NAME
    python -m data_access.accounts revoke-screen (--label TEXT | --id ID | --token TOKEN)
    python -m data_access.accounts audit [--limit N] [--action ACTION]

Passwords are stored as salted hashes (werkzeug scrypt), tokens as SHA-256 digests; a password or token is
printed once, when it is made. Every change is written to the audit log. Roles and what they may see:

    assessor             协会评估员    every school of the association (read)
    region_officer       地区管理员    the schools of one region
    school_leader        校领导        one school
    logistics_director   后勤处长      one school, plus wall screens and meeting notes
    canteen_manager      食堂经理      one facility (a canteen)
    admin                系统管理员    accounts and the audit log; no warehouse data
"""
from __future__ import annotations

import argparse
import datetime as dt
import getpass
import hashlib
import secrets
import sys
from dataclasses import dataclass

import sqlalchemy as sa
from werkzeug.security import check_password_hash, generate_password_hash

from . import appdb
from .config import get_config
from .errors import InputError
from .scope import Access

ROLES = {
    "assessor": ("协会评估员", "Association assessor", None),
    "region_officer": ("地区管理员", "Region officer", "region"),
    "school_leader": ("校领导", "School leader", "school"),
    "logistics_director": ("后勤处长", "Logistics director", "school"),
    "canteen_manager": ("食堂经理", "Canteen manager", "facility"),
    "admin": ("系统管理员", "Administrator", None),
}
CAN_NOTES = {"logistics_director", "school_leader", "region_officer", "assessor"}
CAN_SCREENS = {"logistics_director", "assessor", "region_officer"}


@dataclass(frozen=True)
class Account:
    name: str
    display_name: str
    role: str
    school_id: str | None
    region_code: str | None
    facility_id: str | None
    disabled: bool
    created_by: str | None = None   # "demo": a demo account, usable in demo mode only

    @property
    def label(self) -> str:
        return self.display_name or self.name

    @property
    def active(self) -> bool:
        """Whether the account may act now: not disabled, and a demo account only while the cockpit runs in
        demo mode (on the embedded demo warehouse) — a session or token of one never reaches real data."""
        return not self.disabled and (self.created_by != "demo" or get_config().demo)


def _now() -> dt.datetime:
    return dt.datetime.now().replace(microsecond=0)


def _row(r) -> Account:
    return Account(r["name"], r["display_name"] or r["name"], r["role"], r["school_id"], r["region_code"],
                   r["facility_id"], bool(r["disabled"]), r["created_by"])


def _check_scope(role: str, school: str | None, region: str | None, facility: str | None) -> None:
    if role not in ROLES:
        raise InputError(f"未知角色：{role}", f"unknown role {role!r} (one of {', '.join(ROLES)})")
    need = ROLES[role][2]
    given = {"school": school, "region": region, "facility": facility}
    extra = [k for k, v in given.items() if v and k != need]
    if need and not given[need]:
        raise InputError(f"角色 {role} 需要 --{need}", f"role {role} needs --{need}")
    if extra:
        raise InputError(f"角色 {role} 不能带 --{extra[0]}", f"role {role} takes no --{extra[0]}")
    if need:
        _check_exists(need, given[need])


def _check_exists(level: str, key: str) -> None:
    """The scope an account or token is bound to must exist in the warehouse (a typo would lock a user out)."""
    from .dims import org_tree

    tree = org_tree()
    frame, col = {"school": (tree.schools, "school_id"), "region": (tree.schools, "region_code"),
                  "facility": (tree.facilities, "facility_id")}[level]
    if key not in set(frame[col]):
        raise InputError(f"仓库中没有该{ {'school': '学校', 'region': '地区', 'facility': '设施'}[level] }：{key}",
                         f"no {level} {key!r} in the warehouse")


# --- accounts -----------------------------------------------------------------------------------------------

def add(name: str, role: str, *, school: str | None = None, region: str | None = None, facility: str | None = None,
        password: str | None = None, display_name: str | None = None, cas_user: str | None = None,
        actor: str = "cli") -> str | None:
    """Create an account. Returns the generated password when none was given (and no CAS id), else None."""
    name = name.strip()
    if not name or len(name) > 64:
        raise InputError("账号名应为1–64个字符", "account names are 1-64 characters")
    _check_scope(role, school, region, facility)
    generated = None
    if password is None and not cas_user:
        generated = password = secrets.token_urlsafe(12)
    if password is not None and len(password) < 10:
        raise InputError("密码至少10位", "passwords need at least 10 characters")
    engine = appdb.app_engine()
    with engine.begin() as conn:
        if conn.execute(sa.select(appdb.account.c.name).where(appdb.account.c.name == name)).first():
            raise InputError(f"账号已存在：{name}", f"account {name!r} exists")
        conn.execute(sa.insert(appdb.account).values(
            name=name, display_name=display_name, role=role, school_id=school, region_code=region,
            facility_id=facility, password_hash=generate_password_hash(password) if password else None,
            cas_user=cas_user, disabled=False, failed_logins=0, created_at=_now(), created_by=actor))
    audit(actor, "account_add", "ok", name, detail=f"role={role} school={school} region={region} facility={facility}")
    return generated


def get(name: str) -> Account | None:
    with appdb.app_engine().connect() as conn:
        r = conn.execute(sa.select(appdb.account).where(appdb.account.c.name == name)).mappings().first()
    return _row(r) if r else None


def by_cas_user(cas_user: str) -> Account | None:
    a = appdb.account
    with appdb.app_engine().connect() as conn:
        r = conn.execute(sa.select(a).where(sa.or_(a.c.cas_user == cas_user,
                                                   sa.and_(a.c.cas_user.is_(None), a.c.name == cas_user)))
                         ).mappings().first()
    return _row(r) if r else None


def all_accounts() -> list[Account]:
    with appdb.app_engine().connect() as conn:
        rows = conn.execute(sa.select(appdb.account).order_by(appdb.account.c.name)).mappings().all()
    return [_row(r) for r in rows]


def set_disabled(name: str, disabled: bool, actor: str = "cli") -> None:
    with appdb.app_engine().begin() as conn:
        n = conn.execute(sa.update(appdb.account).where(appdb.account.c.name == name)
                         .values(disabled=disabled, failed_logins=0, locked_until=None)).rowcount
    if not n:
        raise InputError(f"没有账号：{name}", f"no account {name!r}")
    audit(actor, "account_disable" if disabled else "account_enable", "ok", name)


class LoginRefused(Exception):
    """Wrong name/password, disabled or locked. ``reason`` is for the audit log, never shown to the user."""

    def __init__(self, reason: str, locked_until: dt.datetime | None = None):
        super().__init__(reason)
        self.reason = reason
        self.locked_until = locked_until


def verify_password(name: str, password: str, ip: str | None = None) -> Account:
    """Check a local login; count failures and lock the account after ``auth.max_failures`` of them."""
    auth = get_config().auth
    a = appdb.account
    now = _now()
    ok = locked_until = None
    # The audit rows are written after the transaction: SQLite allows one writer at a time.
    with appdb.app_engine().begin() as conn:
        r = conn.execute(sa.select(a).where(a.c.name == name)).mappings().first()
        if r is None:
            check_password_hash(_DUMMY_HASH, password)   # same time as a real check: no account enumeration
            reason = "unknown account"
        elif r["disabled"]:
            reason = "disabled"
        elif r["locked_until"] is not None and r["locked_until"] > now:
            reason, locked_until = "locked", r["locked_until"]
        elif r["password_hash"] and check_password_hash(r["password_hash"], password):
            conn.execute(sa.update(a).where(a.c.name == name).values(failed_logins=0, locked_until=None))
            ok = _row(r)
        else:
            failures = int(r["failed_logins"] or 0) + 1
            locked = now + dt.timedelta(minutes=int(auth["lockout_minutes"])) \
                if failures >= int(auth["max_failures"]) else None
            conn.execute(sa.update(a).where(a.c.name == name).values(
                failed_logins=0 if locked else failures, locked_until=locked))
            reason = "wrong password" + (" (locked)" if locked else "")
    if ok is not None:
        audit(name, "login", "ok", name, ip, "password")
        return ok
    audit(name or "?", "login", "refused" if locked_until else "failed", name, ip, reason)
    raise LoginRefused(reason, locked_until)


_DUMMY_HASH = generate_password_hash("not a password of anyone")


def access_for(account: Account) -> Access:
    """The data an account may see. Region officers see the region's schools as they are now."""
    if not account.active or account.role == "admin":
        return Access(frozenset(), None, f"{account.role}:{account.name}")
    label = f"{account.role}:{account.name}"
    if account.role == "assessor":
        return Access(None, None, label)
    if account.role == "region_officer":
        from .dims import org_tree

        schools = org_tree().schools
        return Access(frozenset(schools.loc[schools.region_code == account.region_code, "school_id"]), None, label)
    if account.role == "canteen_manager":
        from .dims import org_tree

        fac = org_tree().facilities
        school = fac.loc[fac.facility_id == account.facility_id, "school_id"]
        return Access(frozenset(school), account.facility_id, label)
    return Access(frozenset([account.school_id]) if account.school_id else frozenset(), None, label)


# --- tokens -------------------------------------------------------------------------------------------------

def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(name: str, label: str | None = None, actor: str = "cli") -> str:
    """An API bearer token acting as the account (shown once, stored hashed)."""
    if get(name) is None:
        raise InputError(f"没有账号：{name}", f"no account {name!r}")
    token = "ck_" + secrets.token_urlsafe(32)
    with appdb.app_engine().begin() as conn:
        conn.execute(sa.insert(appdb.api_token).values(token_hash=_digest(token), kind="api", account=name,
                                                       label=label, created_at=_now(), revoked=False))
    audit(actor, "token_issue", "ok", name, detail=label)
    return token


def issue_screen_token(*, school: str | None = None, region: str | None = None, facility: str | None = None,
                       label: str | None = None, actor: str = "cli") -> str:
    """A read-only token bound to one scope, for a wall screen's URL (shown once, stored hashed)."""
    given = [k for k, v in (("school", school), ("region", region), ("facility", facility)) if v]
    if len(given) != 1:
        raise InputError("大屏令牌需要且只需要 --school、--region 或 --facility 之一",
                         "a screen token needs exactly one of --school, --region, --facility")
    _check_exists(given[0], school or region or facility)
    token = "sc_" + secrets.token_urlsafe(32)
    with appdb.app_engine().begin() as conn:
        conn.execute(sa.insert(appdb.api_token).values(
            token_hash=_digest(token), kind="screen", school_id=school, region_code=region, facility_id=facility,
            label=label, created_at=_now(), revoked=False))
    audit(actor, "screen_token_issue", "ok", school or region or facility, detail=label)
    return token


@dataclass(frozen=True)
class TokenIdentity:
    kind: str                    # api | screen
    account: Account | None      # api tokens
    access: Access
    name: str


def lookup_token(token: str) -> TokenIdentity | None:
    """Who a bearer or screen token stands for, or None (unknown, revoked, or its account disabled)."""
    if not token or len(token) > 200:
        return None
    return lookup_token_digest(_digest(token))


def lookup_token_digest(digest: str) -> TokenIdentity | None:
    t = appdb.api_token
    with appdb.app_engine().connect() as conn:
        r = conn.execute(sa.select(t).where(t.c.token_hash == digest, t.c.revoked.is_(False))
                         ).mappings().first()
    if r is None:
        return None
    if r["kind"] == "api":
        account = get(r["account"])
        if account is None or not account.active:
            return None
        return TokenIdentity("api", account, access_for(account), account.name)
    from .dims import org_tree

    tree = org_tree()
    label = f"screen:{r['label'] or r['school_id'] or r['region_code'] or r['facility_id']}"
    if r["facility_id"]:
        school = tree.facilities.loc[tree.facilities.facility_id == r["facility_id"], "school_id"]
        access = Access(frozenset(school), r["facility_id"], label)
    elif r["region_code"]:
        access = Access(frozenset(tree.schools.loc[tree.schools.region_code == r["region_code"], "school_id"]),
                        None, label)
    else:
        access = Access(frozenset([r["school_id"]]), None, label)
    return TokenIdentity("screen", None, access, label)


TOKEN_ID_LENGTH = 12   # a token's id: the first hex digits of its SHA-256 digest (never the token itself)


def list_tokens(include_revoked: bool = False) -> list[dict]:
    """Every token as {"id", "kind", "account", "scope", "label", "created_at", "revoked"} — never the token
    (which is not stored) nor its full digest; ``id`` names it for ``revoke_screen_tokens(token_id=…)``."""
    t = appdb.api_token
    stmt = sa.select(t).order_by(t.c.created_at, t.c.token_hash)
    if not include_revoked:
        stmt = stmt.where(t.c.revoked.is_(False))
    with appdb.app_engine().connect() as conn:
        rows = conn.execute(stmt).mappings().all()
    return [{"id": r["token_hash"][:TOKEN_ID_LENGTH], "kind": r["kind"], "account": r["account"],
             "scope": r["school_id"] or r["region_code"] or r["facility_id"] or None, "label": r["label"],
             "created_at": r["created_at"], "revoked": bool(r["revoked"])} for r in rows]


def revoke_tokens(name: str, actor: str = "cli") -> int:
    """Revoke every API token of an account (its sessions are not affected: ``disable`` ends those).
    Returns how many were revoked; an unknown account is an InputError."""
    if get(name) is None:
        raise InputError(f"没有账号：{name}", f"no account {name!r}")
    t = appdb.api_token
    with appdb.app_engine().begin() as conn:
        n = conn.execute(sa.update(t).where(t.c.kind == "api", t.c.account == name, t.c.revoked.is_(False))
                         .values(revoked=True)).rowcount
    audit(actor, "token_revoke", "ok", name, detail=f"api tokens revoked: {n}")
    return n


def revoke_screen_tokens(*, label: str | None = None, token_id: str | None = None, token: str | None = None,
                         actor: str = "cli") -> int:
    """Revoke wall-screen tokens by label (every screen token carrying it), by id (as ``list_tokens`` shows it;
    at least 6 hex digits, and it must name exactly one token) or by the token itself. A screen showing a
    revoked token stops at its next request. Returns how many were revoked; nothing matching is an InputError."""
    if sum(1 for v in (label, token_id, token) if v) != 1:
        raise InputError("请给出 --label、--id 或 --token 之一", "give exactly one of --label, --id, --token")
    t = appdb.api_token
    cond = [t.c.kind == "screen", t.c.revoked.is_(False)]
    if label:
        cond.append(t.c.label == label)
    elif token:
        cond.append(t.c.token_hash == _digest(token.strip()))
    else:
        prefix = token_id.strip().lower()
        if len(prefix) < 6 or any(c not in "0123456789abcdef" for c in prefix):
            raise InputError("令牌编号应为至少6位十六进制数字（见 list-tokens）",
                             "a token id is at least 6 hex digits (see list-tokens)")
        cond.append(t.c.token_hash.like(prefix + "%"))
    with appdb.app_engine().begin() as conn:
        hits = [r[0] for r in conn.execute(sa.select(t.c.token_hash).where(*cond))]
        if not hits:
            raise InputError("没有匹配的有效大屏令牌", "no active screen token matches")
        if token_id and len(hits) > 1:
            raise InputError("令牌编号不唯一，请多给几位", "the token id matches several tokens; give more digits")
        conn.execute(sa.update(t).where(t.c.token_hash.in_(hits)).values(revoked=True))
    audit(actor, "screen_token_revoke", "ok", label or (token_id or "token"),
          detail="revoked: " + ", ".join(h[:TOKEN_ID_LENGTH] for h in hits))
    return len(hits)


# --- audit --------------------------------------------------------------------------------------------------

# What the audit log records (action column): logins and sessions, data access, account and token changes.
AUDIT_ACTIONS = ("login", "logout", "session_timeout", "api_call", "export", "scope_denied", "account_add",
                 "account_disable", "account_enable", "token_issue", "token_revoke", "screen_token_issue",
                 "screen_token_revoke", "token", "screen_token")


def audit(actor: str, action: str, outcome: str, target: str | None = None, ip: str | None = None,
          detail: str | None = None) -> None:
    with appdb.app_engine().begin() as conn:
        now = dt.datetime.now()
        conn.execute(sa.insert(appdb.audit_log).values(
            id=f"{now:%Y%m%d%H%M%S%f}-{secrets.token_hex(4)}", ts=now.replace(microsecond=0), actor=(actor or "?")[:64], action=action[:32],
            outcome=outcome[:16], target=(target or "")[:300], ip=(ip or "")[:64], detail=(detail or "")[:2000]))


def audit_rows(limit: int = 500, action: str | None = None) -> list[dict]:
    a = appdb.audit_log
    stmt = sa.select(a).order_by(a.c.id.desc()).limit(limit)
    if action:
        stmt = stmt.where(a.c.action == action)
    with appdb.app_engine().connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings().all()]


# --- CLI ----------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_access.accounts", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_add = sub.add_parser("add", help="create an account")
    p_add.add_argument("name")
    p_add.add_argument("--role", required=True, choices=list(ROLES))
    for opt in ("school", "region", "facility", "display", "cas-user"):
        p_add.add_argument(f"--{opt}")
    p_add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    sub.add_parser("list", help="list accounts")
    for cmd in ("disable", "enable"):
        sub.add_parser(cmd).add_argument("name")
    p_tok = sub.add_parser("token", help="issue an API bearer token for an account")
    p_tok.add_argument("name")
    p_tok.add_argument("--label")
    p_scr = sub.add_parser("screen-token", help="issue a read-only wall-screen token bound to one scope")
    for opt in ("school", "region", "facility", "label"):
        p_scr.add_argument(f"--{opt}")
    p_lst = sub.add_parser("list-tokens", help="list tokens: id, kind, account or scope, label, created (never the token)")
    p_lst.add_argument("--all", action="store_true", help="revoked tokens too")
    sub.add_parser("revoke", help="revoke every API token of an account").add_argument("name")
    p_rvs = sub.add_parser("revoke-screen", help="revoke wall-screen tokens by label, id (see list-tokens) or token")
    p_rvs.add_argument("--label")
    p_rvs.add_argument("--id", dest="token_id")
    p_rvs.add_argument("--token")
    p_aud = sub.add_parser("audit", help="print the newest audit rows")
    p_aud.add_argument("--limit", type=int, default=50)
    p_aud.add_argument("--action", help="only this action (login, export, api_call, scope_denied, …)")
    args = parser.parse_args(argv)
    try:
        if args.command == "add":
            password = None
            if args.password_stdin:
                password = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass()
            generated = add(args.name, args.role, school=args.school, region=args.region, facility=args.facility,
                            password=password, display_name=args.display, cas_user=args.cas_user)
            print(f"created {args.name} ({args.role})")
            if generated:
                print(f"password (shown once): {generated}")
        elif args.command == "list":
            for a in all_accounts():
                scope = a.school_id or a.region_code or a.facility_id or "-"
                print(f"{a.name:20} {a.role:20} {scope:16} {'disabled' if a.disabled else 'active'}")
        elif args.command in ("disable", "enable"):
            set_disabled(args.name, args.command == "disable")
            print(f"{args.command}d {args.name}")
        elif args.command == "token":
            print(f"API token for {args.name} (shown once): {issue_token(args.name, args.label)}")
        elif args.command == "screen-token":
            token = issue_screen_token(school=args.school, region=args.region, facility=args.facility,
                                       label=args.label)
            print(f"screen token (shown once): {token}")
            print(f"use it as /screen?…&token={token}")
        elif args.command == "list-tokens":
            print(f"{'id':{TOKEN_ID_LENGTH}} {'kind':6} {'account/scope':20} {'created':19} {'state':8} label")
            for r in list_tokens(include_revoked=args.all):
                who = r["account"] if r["kind"] == "api" else r["scope"]
                print(f"{r['id']} {r['kind']:6} {who or '-':20} {r['created_at']!s:19} "
                      f"{'revoked' if r['revoked'] else 'active':8} {r['label'] or ''}")
        elif args.command == "revoke":
            print(f"revoked {revoke_tokens(args.name)} API token(s) of {args.name}")
        elif args.command == "revoke-screen":
            n = revoke_screen_tokens(label=args.label, token_id=args.token_id, token=args.token)
            print(f"revoked {n} screen token(s)")
        elif args.command == "audit":
            for r in audit_rows(args.limit, args.action):
                print(f"{r['ts']} {r['actor']:16} {r['action']:20} {r['outcome']:8} {r['target']} {r['detail']}")
    except InputError as exc:
        print(f"error: {exc.en}", file=sys.stderr)
        return 2
    return 0



if __name__ == "__main__":
    sys.exit(main())
