#!/usr/bin/env python3
"""fake_pagerduty.py - a local PagerDuty REST API v2 for tests without the internet.

    python3 Tests/Fakes/fake_pagerduty.py --port 0 [--state-file PATH] [--seed FILE] [--token T]

prints `READY http://127.0.0.1:<port>` once it listens. It serves the part of
the REST API writd needs, shaped after PagerDuty's OpenAPI description
(github.com/PagerDuty/api-schema, reference/REST/openapiv3.json) and its
developer docs (Authentication, Versioning, Pagination, Errors, Rate Limits):

  GET /users?query=&limit=&offset=&total=   users whose name or e-mail contains `query`
  GET /users/{id}
  GET /oncalls?escalation_policy_ids[]=&schedule_ids[]=&user_ids[]=&since=&until=
              &earliest=&time_zone=&include[]=&limit=&offset=&total=
  GET /abilities                             a cheap authenticated "ping"

plus a control API under /_fake/ (see README.md). Standard library only.

Faithful details: `Authorization: Token token=<key>` or 401 with PagerDuty's
error object (code 2006); classic pagination (limit default 25, at most 100,
offset+limit over 10000 is a 400; `total` is null unless total=true);
429 with ratelimit-limit / ratelimit-remaining / ratelimit-reset and
{"error": {"message": "Rate Limit Exceeded", "code": 2020}}; the same
ratelimit-* headers on every authenticated answer. PagerDuty documents the
`Accept: application/vnd.pagerduty+json;version=2` header as a version
override (the version otherwise follows the token), so a missing Accept is
NOT an error here either; every recorded request says whether it was sent.
"""

import sys

sys.dont_write_bytecode = True  # keep Tests/Fakes free of __pycache__

import copy
import datetime
import json
import math
import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import fakelib
from fakelib import Response, control_error, make_id

ACCEPT_V2 = "application/vnd.pagerduty+json;version=2"

DEFAULT_CONFIG = {
    "tokens": ["pd-fake-token"],  # accepted as `Authorization: Token token=<value>`
    "account_time_zone": "UTC",  # on-call times are rendered in it unless time_zone= is given
    "abilities": ["teams", "read_only_users", "service_support_hours", "urgencies"],
    "rate_limit_per_minute": 960,  # per token, fixed one-minute windows
    "subdomain": "writ-test",  # for html_url
}


def pd_error(status, message, code, errors=None):
    body = {"error": {"message": message, "code": code}}
    if errors:
        body["error"]["errors"] = errors
    return Response.json(body, status=status)


class BadInput(Exception):
    def __init__(self, message, code=2001, errors=None):
        super().__init__(message)
        self.response = pd_error(400, message, code, errors)


def parse_time(value, tz):
    """ISO 8601; a time without an offset is read in `tz`."""
    try:
        dt = datetime.datetime.fromisoformat(value.replace(" ", "+") if "T" in value else value)
    except ValueError:
        raise BadInput("Invalid time values in 'since' and/or 'until' parameters", 2004)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt


def render_time(dt, tz):
    if dt is None:
        return None
    local = dt.astimezone(tz)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    offset = local.utcoffset()
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


class FakePagerDuty:
    def __init__(self, overrides=None):
        self.config = copy.deepcopy(DEFAULT_CONFIG)
        self.config.update(overrides or {})
        self.base_url = ""
        self.seq = 0
        self.faults = fakelib.Faults(("api",))
        self.ratelimits = fakelib.RateLimits()
        self.recorder = fakelib.Recorder("requests")
        self.windows = {}  # token -> [window start, count]
        self._reset_seeds()

    def _reset_seeds(self):
        self.users = {}
        self.policies = {}
        self.schedules = {}
        self.oncalls = []

    async def start(self, url):
        self.base_url = url

    # -- seeding ---------------------------------------------------------

    def seed(self, body):
        out = {"users": [], "escalation_policies": [], "schedules": [], "oncalls": 0}
        for u in body.get("users", []):
            uid = u.get("id") or make_id("P", 7)
            name = u.get("name") or u.get("email", uid)
            self.users[uid] = {
                "id": uid,
                "type": "user",
                "summary": name,
                "self": f"{self.base_url}/users/{uid}",
                "html_url": f"https://{self.config['subdomain']}.pagerduty.com/users/{uid}",
                "name": name,
                "email": u.get("email", f"{uid.lower()}@example.com"),
                "time_zone": u.get("time_zone", "Etc/UTC"),
                "color": u.get("color", "green"),
                "role": u.get("role", "user"),
                "avatar_url": "https://pd-static-assets.example/users/blank-avatar.png",
                "description": u.get("description"),
                "invitation_sent": bool(u.get("invitation_sent", False)),
                "job_title": u.get("job_title", ""),
                "teams": [self._ref("team", t, t) for t in u.get("teams", [])],
                "contact_methods": [],
                "notification_rules": [],
            }
            out["users"].append(uid)
        for p in body.get("escalation_policies", []):
            pid = p.get("id") or make_id("P", 7)
            self.policies[pid] = {"id": pid, "name": p.get("name", pid)}
            out["escalation_policies"].append(pid)
        for s in body.get("schedules", []):
            sid = s.get("id") or make_id("P", 7)
            self.schedules[sid] = {"id": sid, "name": s.get("name", sid),
                                   "time_zone": s.get("time_zone", "Etc/UTC")}
            out["schedules"].append(sid)
        if body.get("replace_oncalls"):
            self.oncalls = []
        utc = datetime.timezone.utc
        for o in body.get("oncalls", []):
            if o.get("user") not in self.users:
                raise ValueError(f"oncall user {o.get('user')!r} is not seeded")
            if o.get("escalation_policy") not in self.policies:
                raise ValueError(f"oncall escalation_policy {o.get('escalation_policy')!r} is not seeded")
            if o.get("schedule") is not None and o["schedule"] not in self.schedules:
                raise ValueError(f"oncall schedule {o['schedule']!r} is not seeded")
            self.oncalls.append({
                "user": o["user"],
                "escalation_policy": o["escalation_policy"],
                "schedule": o.get("schedule"),
                "escalation_level": int(o.get("escalation_level", 1)),
                "start": parse_time(o["start"], utc) if o.get("start") else None,
                "end": parse_time(o["end"], utc) if o.get("end") else None,
            })
            out["oncalls"] += 1
        return out

    # -- references and objects ------------------------------------------

    def _ref(self, kind, oid, summary):
        plural = {"user": "users", "team": "teams", "schedule": "schedules",
                  "escalation_policy": "escalation_policies"}[kind]
        return {
            "id": oid,
            "type": f"{kind}_reference",
            "summary": summary,
            "self": f"{self.base_url}/{plural}/{oid}",
            "html_url": f"https://{self.config['subdomain']}.pagerduty.com/{plural}/{oid}",
        }

    def _policy_obj(self, pid):
        p = self.policies[pid]
        ref = self._ref("escalation_policy", pid, p["name"])
        ref.update(type="escalation_policy", name=p["name"], escalation_rules=[], services=[],
                   num_loops=0, teams=[], description="")
        return ref

    def _schedule_obj(self, sid):
        s = self.schedules[sid]
        ref = self._ref("schedule", sid, s["name"])
        ref.update(type="schedule", name=s["name"], time_zone=s["time_zone"], description="")
        return ref

    # -- HTTP ------------------------------------------------------------

    async def handle(self, req, reader, writer):
        if req.path.startswith("/_fake/") or req.path == "/_fake":
            return await self.handle_control(req)
        self.seq += 1
        record = {
            "seq": self.seq,
            "at": req.received_at,
            "method": req.method,
            "path": req.path,
            "query": req.query_string,
            "params": req.query,
            "authorization": req.headers.get("authorization"),
            "accept": req.headers.get("accept"),
            "accept_v2": (req.headers.get("accept") or "").replace(" ", "") == ACCEPT_V2,
        }
        fault = await self.faults.apply("api", pd_error(503, "Service Unavailable", 2000), req)
        if fault is not None:
            record.update(fault=self.faults.active.get("api", {}).get("mode"),
                          status=getattr(fault, "status", None))
            self.recorder.add("requests", record)
            return fault
        response = self._answer(req)
        record["status"] = response.status
        try:
            record["response"] = json.loads(response.body)
        except ValueError:
            record["response"] = response.body.decode("utf-8", "replace")
        self.recorder.add("requests", record)
        return response

    def _answer(self, req):
        auth = req.headers.get("authorization", "")
        token = auth[len("Token token="):] if auth.startswith("Token token=") else None
        if token is None or token not in self.config["tokens"]:
            return pd_error(401, "Authentication failed", 2006)

        # Rate limiting: forced rules first, then the real per-minute budget.
        limit = int(self.config["rate_limit_per_minute"])
        forced = self.ratelimits.check(_route_key(req.path))
        now = time.time()
        window = self.windows.setdefault(token, [now, 0])
        if now - window[0] >= 60:
            window[0], window[1] = now, 0
        reset = max(1, math.ceil(60 - (now - window[0])))
        if forced is not None:
            return self._limited(limit, forced)
        if window[1] >= limit:
            return self._limited(limit, reset)
        window[1] += 1
        headers = [("ratelimit-limit", str(limit)), ("ratelimit-remaining", str(limit - window[1])),
                   ("ratelimit-reset", str(reset))]

        try:
            response = self._route(req)
        except BadInput as e:
            response = e.response
        response.headers += headers
        return response

    @staticmethod
    def _limited(limit, reset):
        r = pd_error(429, "Rate Limit Exceeded", 2020)
        r.headers += [("ratelimit-limit", str(limit)), ("ratelimit-remaining", "0"),
                      ("ratelimit-reset", str(reset))]
        return r

    def _route(self, req):
        parts = [p for p in req.path.split("/") if p]
        if req.method != "GET":
            return pd_error(404, "Not Found", 2100)
        if parts == ["abilities"]:
            return Response.json({"abilities": list(self.config["abilities"])})
        if parts == ["users"]:
            return self.list_users(req)
        if len(parts) == 2 and parts[0] == "users":
            user = self.users.get(parts[1])
            if user is None:
                return pd_error(404, "Not Found", 2100)
            return Response.json({"user": user})
        if parts == ["oncalls"]:
            return self.list_oncalls(req)
        return pd_error(404, "Not Found", 2100)

    # -- pagination ------------------------------------------------------

    @staticmethod
    def _paginate(req, items, key):
        def integer(name, default):
            raw = req.q(name)
            if raw is None or raw == "":
                return default
            try:
                value = int(raw)
            except ValueError:
                raise BadInput("Invalid Input Provided", 2001, [f"{name.capitalize()} must be an integer"])
            if value < 0 or (name == "limit" and value == 0):
                raise BadInput("Invalid Input Provided", 2001, [f"{name.capitalize()} must be positive"])
            return value

        limit = min(integer("limit", 25), 100)  # PagerDuty: default 25, at most 100
        offset = integer("offset", 0)
        if offset + limit > 10000:
            raise BadInput("Invalid Input Provided", 2001, ["Offset must be less than 10000"])
        total = (req.q("total") or "").lower() == "true"
        page = items[offset:offset + limit]
        return Response.json({
            key: page,
            "limit": limit,
            "offset": offset,
            "more": offset + len(page) < len(items),
            "total": len(items) if total else None,
        })

    # -- endpoints -------------------------------------------------------

    def list_users(self, req):
        query = (req.q("query") or "").lower()
        team_ids = set(req.query.get("team_ids[]", []))
        users = [
            u for u in self.users.values()
            if (query in u["name"].lower() or query in u["email"].lower())
            and (not team_ids or team_ids & {t["id"] for t in u["teams"]})
        ]
        users.sort(key=lambda u: u["name"].lower())
        return self._paginate(req, users, "users")

    def list_oncalls(self, req):
        tz_name = req.q("time_zone") or self.config["account_time_zone"]
        try:
            tz = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise BadInput("Invalid Input Provided", 2001, ["Time zone is invalid"])
        now = datetime.datetime.now(datetime.timezone.utc)
        since = parse_time(req.q("since"), tz) if req.q("since") else now
        until = parse_time(req.q("until"), tz) if req.q("until") else now
        if until < since:
            raise BadInput("Invalid Query Date Range", 2005, ["The 'until' time cannot be before the 'since' time"])
        if until - now > datetime.timedelta(days=90):
            raise BadInput("Invalid Query Date Range", 2005, ["On-call shifts are limited to 90 days in the future"])
        users = set(req.query.get("user_ids[]", []))
        policies = set(req.query.get("escalation_policy_ids[]", []))
        schedules = set(req.query.get("schedule_ids[]", []))
        includes = set(req.query.get("include[]", []))

        def keep(o):
            if users and o["user"] not in users:
                return False
            if policies and o["escalation_policy"] not in policies:
                return False
            if schedules:
                # "null" in schedule_ids[] selects permanent on-calls (no schedule).
                sid = o["schedule"] if o["schedule"] is not None else "null"
                if sid not in schedules:
                    return False
            # Overlap with [since, until]; a missing start/end is open-ended.
            if o["start"] is not None and o["start"] > until:
                return False
            if o["end"] is not None and o["end"] <= since:
                return False
            return True

        found = [o for o in self.oncalls if keep(o)]
        if (req.q("earliest") or "").lower() == "true":
            # Only the earliest on-call per (escalation policy, level, user).
            best = {}
            for o in found:
                k = (o["escalation_policy"], o["escalation_level"], o["user"])
                start = o["start"] or datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
                if k not in best or start < best[k][0]:
                    best[k] = (start, o)
            found = [o for _, o in best.values()]
        floor = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
        found.sort(key=lambda o: (o["escalation_policy"], o["escalation_level"], o["start"] or floor, o["user"]))

        def render(o):
            user = self.users[o["user"]]
            entry = {
                "escalation_policy": (self._policy_obj(o["escalation_policy"]) if "escalation_policies" in includes
                                      else self._ref("escalation_policy", o["escalation_policy"],
                                                     self.policies[o["escalation_policy"]]["name"])),
                "escalation_level": o["escalation_level"],
                "schedule": None,
                "user": user if "users" in includes else self._ref("user", user["id"], user["name"]),
                "start": render_time(o["start"], tz),
                "end": render_time(o["end"], tz),
            }
            if o["schedule"] is not None:
                entry["schedule"] = (self._schedule_obj(o["schedule"]) if "schedules" in includes
                                     else self._ref("schedule", o["schedule"], self.schedules[o["schedule"]]["name"]))
            return entry

        return self._paginate(req, [render(o) for o in found], "oncalls")

    # -- control API -----------------------------------------------------

    async def handle_control(self, req):
        route = req.path[len("/_fake"):].rstrip("/") or "/"
        try:
            body = (req.json() if req.method == "POST" else {}) or {}
        except ValueError:
            return control_error("body is not JSON")
        R = Response.json
        try:
            if route == "/health":
                return R({"ok": True, "url": self.base_url})
            if route == "/state":
                return R(self.dump())
            if route == "/dump":
                path = body.get("path") or req.q("path")
                if not path:
                    raise ValueError("missing path")
                with open(path, "w") as f:
                    json.dump(self.dump(), f, indent=2, default=str)
                return R({"ok": True, "path": path})
            if route == "/seed":
                return R({"ok": True, "seeded": self.seed(body)})
            if route == "/reset":
                self.recorder.reset()
                self.ratelimits.clear()
                self.faults.clear()
                self.windows.clear()
                if body.get("seeds"):
                    self._reset_seeds()
                return R({"ok": True})
            if route == "/config":
                if req.method == "POST":
                    unknown = set(body) - set(DEFAULT_CONFIG)
                    if unknown:
                        raise ValueError(f"unknown config keys: {sorted(unknown)}")
                    self.config.update(body)
                return R(self.config)
            if route == "/ratelimit":
                if "path" in body:
                    body = dict(body, path=_route_key(body["path"]) if body["path"] != "*" else "*")
                return R({"ok": True, "rules": self.ratelimits.set(body)})
            if route == "/down":
                return R({"ok": True, "faults": self.faults.set(body)})
            if route == "/up":
                return R({"ok": True, "faults": self.faults.clear()})
            if route == "/wait":
                return await fakelib.wait_endpoint(self.recorder, req)
            if route == "/requests":
                return R({"items": self.recorder.select("requests", fakelib.query_where(req))})
        except (ValueError, KeyError, TypeError) as e:
            return control_error(str(e))
        return control_error(f"unknown control endpoint {req.path}", status=404)

    def dump(self):
        return {
            "config": self.config,
            "faults": self.faults.describe(),
            "ratelimits": self.ratelimits.describe(),
            "users": self.users,
            "escalation_policies": self.policies,
            "schedules": self.schedules,
            "oncalls": [{**o, "start": render_time(o["start"], datetime.timezone.utc),
                         "end": render_time(o["end"], datetime.timezone.utc)} for o in self.oncalls],
            "requests": self.recorder.lists["requests"],
        }


def _route_key(path):
    """Rate-limit rules are keyed by route: /users/PABC123 -> /users/{id}."""
    parts = [p for p in path.split("/") if p]
    if len(parts) == 2 and parts[0] == "users":
        return "/users/{id}"
    return "/" + "/".join(parts)


def main():
    parser = fakelib.base_arguments("A local fake of PagerDuty's REST API v2 (users, on-calls, abilities).")
    parser.add_argument("--token", action="append", help="accepted API token (repeatable)")
    args = parser.parse_args()
    overrides = {"tokens": args.token} if args.token else {}
    fake = FakePagerDuty(overrides)

    seed = None
    if args.seed:
        with open(args.seed) as f:
            seed = json.load(f)

    original_start = fake.start

    async def start(url):
        await original_start(url)
        if seed:  # seeded after start so "self" links carry the real port
            fake.seed(seed)

    fake.start = start
    fakelib.run(fake, args)


if __name__ == "__main__":
    main()
