#!/usr/bin/env python3
"""fake_slack.py - a local Slack for tests that must run without the internet.

    python3 Tests/Fakes/fake_slack.py --port 0 [--state-file PATH] [--seed FILE]

prints `READY http://127.0.0.1:<port>` once it listens. One port serves:

  /api/<method>          Slack's Web API (the methods writd uses, see METHODS)
  /link/?ticket=...      Socket Mode WebSocket (URL handed out by apps.connections.open)
  /commands/..., /actions/...
                         response_url endpoints handed out in payloads
  /_fake/...             the control API tests drive with curl (see README.md)

Wire formats follow Slack's documentation (docs.slack.dev): Web API errors are
HTTP 200 with {"ok": false, "error": "..."}; rate limits are HTTP 429 with
Retry-After and {"ok": false, "error": "ratelimited"}; Socket Mode sends hello,
envelopes and disconnect messages and expects {"envelope_id", "payload"?}
acks. What is simplified is listed in README.md.

Only the standard library and `websockets` (Debian's python3-websockets, used
for its Sans-I/O WebSocket protocol) are used.
"""

import os
import sys

sys.dont_write_bytecode = True  # keep Tests/Fakes free of __pycache__

try:
    import websockets  # noqa: F401
except ImportError:
    # The python3 first on PATH may be a pyenv/other build that does not see
    # Debian's python3-websockets; the system interpreter does.
    system = "/usr/bin/python3"
    if os.path.exists(system) and not os.environ.get("WRIT_FAKE_REEXEC"):
        os.environ["WRIT_FAKE_REEXEC"] = "1"
        os.execv(system, [system, *sys.argv])
    sys.exit("fake_slack.py needs websockets: apt-get install -y python3-websockets")

import asyncio
import copy
import http
import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import websockets.server
from websockets.frames import Opcode

import fakelib
from fakelib import Response, Upgraded, control_error, make_id
import slack_signature

# websockets >= 11 renamed the Sans-I/O class; 10.4 (Debian 12) has ServerConnection.
ServerProtocol = getattr(websockets.server, "ServerProtocol", None) or websockets.server.ServerConnection

# Default identity of the fake workspace and app. Everything can be changed
# with POST /_fake/config or the command line.
DEFAULT_CONFIG = {
    "team_id": "T0WRITTEST",
    "team_domain": "writ-test",
    "team_name": "Writ Test",
    "app_id": "A0WRITTEST",
    "bot_user_id": "U0WRITBOT1",
    "bot_id": "B0WRITBOT1",
    "bot_name": "writ",
    "bot_tokens": ["xoxb-writ-fake-bot-token"],
    "app_tokens": ["xapp-1-A0WRITTEST-1-writ-fake-app-token"],
    "revoked_tokens": [],  # answered with token_revoked
    "signing_secret": "writ-fake-signing-secret",
    "verification_token": "writ-fake-verification-token",  # legacy `token` field in payloads
    # Socket Mode
    "ack_timeout": 3.0,  # Slack expects an ack within 3 s; later acks are recorded as late
    "events_retry_delays": [3.0, 60.0, 300.0],  # un-acked events_api envelopes: wait, resend...
    "refresh_grace": 10.0,  # refresh_requested: old socket stays open this long
    "warning_grace": 10.0,  # warning: "about 10 seconds before the disconnect"
    "max_connections": 10,  # Slack allows up to 10 sockets per app
    "server_ping_interval": 10.0,  # 0 disables the server's WebSocket pings
    "approximate_connection_time": 18060,
    "auto_refresh_after": None,  # seconds; send refresh_requested to every socket that old
    "ticket_ttl": 60.0,
    "link_disabled_error": "forbidden_team",  # apps.connections.open error while Socket Mode is off
    # Interactivity
    "trigger_ttl": 3.0,  # trigger_ids expire 3 s after the interaction
    "response_url_ttl": 1800.0,  # response_urls: 30 minutes...
    "response_url_uses": 5,  # ...and at most 5 posts
    "lookup_deleted_users": True,  # users.lookupByEmail returns deactivated users (deleted: true)
}


class SlackError(Exception):
    """A Web API error: HTTP 200, {"ok": false, "error": code, ...}."""

    def __init__(self, code, messages=None, **extra):
        super().__init__(code)
        self.code = code
        self.messages = messages
        self.extra = extra


def missing(field):
    return SlackError("invalid_arguments", [f"[ERROR] missing required field: {field}"])


def as_bool(value):
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("1", "true", "yes")


def as_json(value, field):
    """Form-encoded calls carry JSON as a string; JSON calls carry the value."""
    if value is None or isinstance(value, (dict, list)):
        return value
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        if field == "blocks":
            raise SlackError("invalid_blocks_format")
        raise SlackError("invalid_arguments", [f"[ERROR] failed to parse JSON in field: {field}"])


# ---------------------------------------------------------------------------
# Socket Mode: one WebSocket connection
# ---------------------------------------------------------------------------


class SocketConn:
    """One Socket Mode connection, driven by websockets' Sans-I/O protocol."""

    def __init__(self, fake, proto, reader, writer, ticket, query):
        self.fake = fake
        self.proto = proto
        self.reader = reader
        self.writer = writer
        self.id = f"conn-{next(fake.conn_counter)}"
        self.eof_sent = False
        self.frozen = False
        self.text_buffer = None
        self.tasks = []
        self.info = {  # what GET /_fake/connections shows
            "id": self.id,
            "state": "open",  # open | draining | closed
            "opened_at": time.time(),
            "closed_at": None,
            "ticket": ticket,
            "debug_reconnects": query.get("debug_reconnects") == "true",
            "host": f"applink-fake-{fake.port}",
            "disconnects_sent": [],
            "close_reason": None,
            "client_close_code": None,
            "envelopes_sent": 0,
            "acks": 0,
            "server_pings": 0,
            "pongs_received": 0,
            "client_pings": 0,
            "frozen": False,
        }

    @property
    def state(self):
        return self.info["state"]

    def flush(self):
        for data in self.proto.data_to_send():
            if self.eof_sent:
                continue
            if data:
                self.writer.write(data)
            else:  # SEND_EOF: the server closes the TCP connection
                self.eof_sent = True
                self.writer.close()

    def send_json(self, obj):
        """Send one text frame. Returns False if the socket cannot take it."""
        if self.state == "closed" or self.eof_sent:
            return False
        if self.frozen:
            return True  # half-open: the bytes vanish
        try:
            self.proto.send_text(json.dumps(obj).encode())
        except Exception:
            return False
        self.flush()
        return True

    def close(self, code=1000, reason=""):
        """Start the closing handshake; force the TCP close 2 s later."""
        if self.state == "closed":
            return
        try:
            self.proto.send_close(code, reason)
            self.flush()
        except Exception:
            pass
        asyncio.get_running_loop().call_later(2.0, self.drop, "close handshake timed out")

    def drop(self, why="dropped"):
        """Abort the TCP connection without a close frame (a network failure)."""
        if self.state == "closed":
            return
        fakelib._abort(self.writer)
        self.mark_closed(why)

    def mark_closed(self, why):
        if self.state == "closed":
            return
        self.info["state"] = "closed"
        self.info["closed_at"] = time.time()
        self.info["close_reason"] = self.info["close_reason"] or why
        for task in self.tasks:
            task.cancel()
        self.fake.recorder.changed()

    async def run(self):
        """Read frames until the connection ends."""
        self.tasks.append(asyncio.ensure_future(self._pinger()))
        try:
            while True:
                data = await self.reader.read(65536)
                if self.frozen:
                    if not data:
                        break
                    continue  # half-open: nothing the client sends arrives
                if data:
                    self.proto.receive_data(data)
                else:
                    self.proto.receive_eof()
                for event in self.proto.events_received():
                    self.on_frame(event)
                self.flush()
                if not data or self.eof_sent:
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.mark_closed("client closed" if self.info["client_close_code"] else "connection lost")
            try:
                self.writer.close()
            except Exception:
                pass

    def on_frame(self, frame):
        if frame.opcode is Opcode.PING:
            self.info["client_pings"] += 1  # the protocol already answered with a pong
        elif frame.opcode is Opcode.PONG:
            self.info["pongs_received"] += 1
        elif frame.opcode is Opcode.CLOSE:
            self.info["client_close_code"] = getattr(self.proto, "close_rcvd", None) and self.proto.close_rcvd.code
            self.info["close_reason"] = self.info["close_reason"] or "client closed"
        elif frame.opcode is Opcode.TEXT:
            self.text_buffer = bytearray(frame.data)
            if frame.fin:
                self._on_text(bytes(self.text_buffer))
        elif frame.opcode is Opcode.CONT and self.text_buffer is not None:
            self.text_buffer += frame.data
            if frame.fin:
                self._on_text(bytes(self.text_buffer))

    def _on_text(self, data):
        self.text_buffer = None
        self.fake.on_client_message(self, data)

    async def _pinger(self):
        interval = self.fake.config["server_ping_interval"]
        if not interval:
            return
        while True:
            await asyncio.sleep(interval)
            if self.state == "closed" or self.frozen:
                return
            try:
                self.proto.send_ping(str(time.time()).encode())
                self.flush()
                self.info["server_pings"] += 1
            except Exception:
                return


class Envelope:
    """A Socket Mode envelope and everything that happened to it."""

    def __init__(self, etype, payload, accepts_response_payload, retry_delays, target=None):
        self.id = str(uuid.uuid4())
        self.type = etype
        self.payload = payload
        self.accepts_response_payload = accepts_response_payload
        self.retry_delays = list(retry_delays or [])
        self.target = target  # a connection id, or None for round-robin
        self.info = {
            "envelope_id": self.id,
            "type": etype,
            "status": "pending",  # pending | sent | queued | acked | unacked | undelivered
            "created_at": time.time(),
            "attempts": [],  # {"retry_attempt", "retry_reason", "connection_id", "sent_at"}
            "acked_at": None,
            "ack_delay": None,
            "payload": payload,
        }


# ---------------------------------------------------------------------------
# The fake
# ---------------------------------------------------------------------------


class FakeSlack:
    def __init__(self, config_overrides=None):
        self.config = copy.deepcopy(DEFAULT_CONFIG)
        self.config.update(config_overrides or {})
        self.counter = _counter()
        self.conn_counter = _counter()
        self.port = 0
        self.base_url = ""
        self.ws_base = ""
        self.faults = fakelib.Faults(("web", "socket"))
        self.ratelimits = fakelib.RateLimits()
        self.recorder = fakelib.Recorder(
            "calls",  # every Web API call
            "messages",  # chat.postMessage results (updated in place by chat.update)
            "ephemerals",  # chat.postEphemeral
            "views",  # views.open / views.update
            "connections",  # Socket Mode connections (info dicts, updated in place)
            "envelopes",  # envelopes delivered over Socket Mode
            "acks",  # every ack received
            "socket_messages",  # client -> server frames that were not acks
            "responses",  # posts to response_urls
            "http_deliveries",  # signed HTTP-mode requests sent to an app
        )
        self.link_disabled = False
        self.rr = 0  # round-robin position
        self.conns = {}  # id -> SocketConn
        self.envelopes = {}  # id -> Envelope
        self.queued = []  # events_api envelopes waiting for a connection
        self.tickets = {}
        self.triggers = {}
        self.response_urls = {}
        self.ts_seq = 0
        self._reset_seeds()

    # -- seeds -------------------------------------------------------------

    def _reset_seeds(self):
        self.users = {}
        self.channels = {}
        self.usergroups = {}
        self.ims = {}  # user id -> D channel id
        self.view_store = {}
        c = self.config
        self.users[c["bot_user_id"]] = self._build_user({
            "id": c["bot_user_id"], "name": c["bot_name"], "is_bot": True,
            "profile": {"bot_id": c["bot_id"], "api_app_id": c["app_id"]},
        })

    def seed(self, body):
        """POST /_fake/seed: add or replace users, channels and usergroups."""
        out = {"users": [], "channels": [], "usergroups": []}
        for u in body.get("users", []):
            user = self._build_user(u)
            self.users[user["id"]] = user
            out["users"].append(user["id"])
        for ch in body.get("channels", []):
            cid = ch.get("id") or make_id("C", 11)
            channel = {
                "id": cid,
                "name": ch.get("name", cid.lower()),
                "is_channel": not ch.get("is_private", False),
                "is_private": bool(ch.get("is_private", False)),
                "is_im": False,
                "is_mpim": False,
                "is_archived": bool(ch.get("is_archived", False)),
                # None = everyone is a member (a big public channel)
                "members": ch.get("members"),
                "bot_member": ch.get("bot_member", True),
            }
            self.channels[cid] = channel
            out["channels"].append(cid)
        for g in body.get("usergroups", []):
            gid = g.get("id") or make_id("S", 11)
            self.usergroups[gid] = {
                "id": gid,
                "team_id": self.config["team_id"],
                "handle": g.get("handle", gid.lower()),
                "name": g.get("name", g.get("handle", gid)),
                "users": list(g.get("users", [])),
                "date_delete": int(time.time()) if g.get("disabled") else 0,
            }
            out["usergroups"].append(gid)
        return out

    def _build_user(self, seed):
        """A user object shaped like users.info's, from a partial seed."""
        c = self.config
        uid = seed.get("id") or make_id("U", 11)
        email = seed.get("email")
        name = seed.get("name") or (email.split("@")[0] if email else uid.lower())
        real_name = seed.get("real_name", name)
        ultra = bool(seed.get("is_ultra_restricted", False))
        is_bot = bool(seed.get("is_bot", False))
        profile = {
            "avatar_hash": "g0000000000",
            "status_text": "",
            "status_emoji": "",
            "real_name": real_name,
            "display_name": seed.get("display_name", name),
            "real_name_normalized": real_name,
            "display_name_normalized": seed.get("display_name", name),
            "team": seed.get("team_id", c["team_id"]),
            "image_24": "https://a.slack-edge.example/avatar_24.png",
            "image_72": "https://a.slack-edge.example/avatar_72.png",
        }
        if email and not is_bot:  # Slack never shows an email for bots
            profile["email"] = email
        profile.update(seed.get("profile", {}))
        user = {
            "id": uid,
            "team_id": seed.get("team_id", c["team_id"]),
            "name": name,
            "deleted": bool(seed.get("deleted", False)),
            "color": "9f69e7",
            "real_name": real_name,
            "tz": seed.get("tz", "Europe/London"),
            "tz_label": seed.get("tz_label", "Greenwich Mean Time"),
            "tz_offset": int(seed.get("tz_offset", 0)),
            "profile": profile,
            "is_admin": bool(seed.get("is_admin", False)),
            "is_owner": bool(seed.get("is_owner", False)),
            "is_primary_owner": bool(seed.get("is_primary_owner", False)),
            # Multi-channel guests are restricted; single-channel guests are both.
            "is_restricted": bool(seed.get("is_restricted", ultra)),
            "is_ultra_restricted": ultra,
            "is_bot": is_bot,
            "is_app_user": bool(seed.get("is_app_user", False)),
            "updated": int(time.time()),
            "has_2fa": bool(seed.get("has_2fa", False)),
        }
        for k, v in seed.items():  # anything else the test wants to pass through
            if k not in user and k not in ("email", "display_name", "profile"):
                user[k] = v
        return user

    # -- small helpers -----------------------------------------------------

    def new_ts(self):
        """Unique, increasing message timestamps in Slack's "seconds.micro" form."""
        self.ts_seq += 1
        return f"{int(time.time())}.{self.ts_seq:06d}"

    def new_trigger(self):
        tid = f"{secrets.randbelow(10**12)}.{secrets.randbelow(10**11)}.{secrets.token_hex(16)}"
        self.triggers[tid] = {"created": time.time(), "used": False}
        return tid

    def new_response_url(self, kind):
        """kind: "commands" or "actions", as in hooks.slack.com/<kind>/..."""
        path = f"/{kind}/{self.config['team_id']}/{secrets.randbelow(10**12)}/{secrets.token_urlsafe(18)}"
        self.response_urls[path] = {"created": time.time(), "uses": 0, "kind": kind, "origin": None}
        return self.base_url + path, path

    def team_ref(self):
        return {"id": self.config["team_id"], "domain": self.config["team_domain"]}

    def user_ref(self, uid):
        u = self.users.get(uid, {})
        name = u.get("name", uid.lower())
        return {"id": uid, "username": name, "name": name, "team_id": self.config["team_id"]}

    def channel_name(self, cid):
        ch = self.channels.get(cid)
        if ch:
            return ch.get("name", "directmessage" if ch.get("is_im") else cid.lower())
        return "directmessage" if cid.startswith("D") else cid.lower()

    def find_message(self, channel, ts):
        for m in self.recorder.lists["messages"]:
            if m["channel"] == channel and m["ts"] == ts and not m.get("deleted"):
                return m
        return None

    def message_object(self, m):
        """A stored message as Slack shows it in API responses and payloads."""
        c = self.config
        obj = {
            "type": "message",
            "subtype": "bot_message" if m.get("username") else None,
            "user": c["bot_user_id"],
            "bot_id": c["bot_id"],
            "app_id": c["app_id"],
            "team": c["team_id"],
            "text": m["text"],
            "ts": m["ts"],
            "bot_profile": {"id": c["bot_id"], "app_id": c["app_id"], "name": c["bot_name"],
                            "team_id": c["team_id"], "deleted": False},
        }
        if obj["subtype"] is None:
            del obj["subtype"]
        if m.get("username"):
            obj["username"] = m["username"]
        if m.get("blocks") is not None:
            obj["blocks"] = m["blocks"]
        if m.get("attachments") is not None:
            obj["attachments"] = m["attachments"]
        if m.get("thread_ts"):
            obj["thread_ts"] = m["thread_ts"]
        if m.get("metadata") is not None:
            obj["metadata"] = m["metadata"]
        if m.get("edits"):
            obj["edited"] = {"user": c["bot_user_id"], "ts": m["edits"][-1]["edited_ts"]}
        return obj

    # =====================================================================
    # HTTP entry point
    # =====================================================================

    async def start(self, url):
        self.base_url = url
        self.port = int(url.rsplit(":", 1)[1])
        self.ws_base = "ws://" + url.split("://", 1)[1]

    async def handle(self, req, reader, writer):
        path = req.path
        if path.startswith("/_fake/") or path == "/_fake":
            return await self.handle_control(req)
        if path.startswith("/api/"):
            return await self.handle_api(req, path[len("/api/"):])
        if path in ("/link", "/link/"):
            return await self.handle_socket(req, reader, writer)
        if path.startswith("/commands/") or path.startswith("/actions/"):
            return self.handle_response_url(req)
        return Response.text("not found\n", 404)

    # =====================================================================
    # Web API
    # =====================================================================

    def _parse_api_request(self, req):
        """Returns (args, token, encoding, warnings); raises SlackError.

        Slack takes arguments from the query string and, for POST, from an
        application/x-www-form-urlencoded, multipart/form-data or
        application/json body. A token is read from `Authorization: Bearer`
        or, except in JSON bodies, from a `token` argument."""
        args = {k: v[0] for k, v in req.query.items()}
        encoding = "query"
        warnings = []
        if req.method == "POST" and req.body:
            ctype = req.headers.get("content-type")
            if not ctype:
                raise SlackError("missing_post_type")
            mime = ctype.split(";")[0].strip().lower()
            if mime == "application/x-www-form-urlencoded" or mime == "text/plain":
                encoding = "form"
                if "charset" in ctype.lower():
                    warnings.append("superfluous_charset")
                try:
                    form = urllib.parse.parse_qs(req.body.decode("utf-8"), keep_blank_values=True)
                except UnicodeDecodeError:
                    raise SlackError("invalid_form_data")
                args.update({k: v[0] for k, v in form.items()})
            elif mime == "application/json":
                encoding = "json"
                if "charset" not in ctype.lower():
                    warnings.append("missing_charset")
                try:
                    body = json.loads(req.body.decode("utf-8"))
                except (UnicodeDecodeError, ValueError):
                    raise SlackError("invalid_json")
                if not isinstance(body, dict):
                    raise SlackError("json_not_object")
                body.pop("token", None)  # Slack ignores a token inside a JSON body
                args.update(body)
            elif mime == "multipart/form-data":
                encoding = "multipart"
                args.update(_parse_multipart(ctype, req.body))
            else:
                raise SlackError("invalid_post_type")
        token = None
        auth = req.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        elif encoding != "json":
            token = args.get("token")
        args.pop("token", None)
        return args, token, encoding, warnings

    def _token_kind(self, token):
        c = self.config
        if not token:
            return None, "not_authed"
        if token in c["revoked_tokens"]:
            return None, "token_revoked"
        if token in c["bot_tokens"]:
            return "bot", None
        if token in c["app_tokens"]:
            return "app", None
        return None, "invalid_auth"

    async def handle_api(self, req, method):
        call = {
            "seq": next(self.counter),
            "at": req.received_at,
            "method": method,
            "http_method": req.method,
            "content_type": req.headers.get("content-type"),
        }
        fault = await self.faults.apply("web", Response.json({"ok": False, "error": "service_unavailable"}, status=503))
        if fault is not None:
            call.update(fault=self.faults.active.get("web", {}).get("mode"),
                        status=getattr(fault, "status", None))
            self.recorder.add("calls", call)
            return fault

        headers = [("X-Slack-Req-Id", secrets.token_hex(16))]
        warnings = []
        status = 200
        try:
            args, token, encoding, warnings = self._parse_api_request(req)
            call.update(encoding=encoding, args=args, token=token)
            spec = METHODS.get(method)
            if spec is None:
                raise SlackError("unknown_method", req_method=method)
            handler_name, token_kind, post_only = spec
            if post_only and req.method != "POST":
                raise SlackError("insecure_request")
            if method == "apps.connections.open" and not token:
                raise SlackError("missing_args")
            kind, error = self._token_kind(token)
            if error:
                raise SlackError(error)
            if kind != token_kind:
                raise SlackError("not_allowed_token_type")
            retry_after = self.ratelimits.check(method)
            if retry_after is not None:
                status = 429
                headers.append(("Retry-After", str(retry_after)))
                raise SlackError("ratelimited")
            result = getattr(self, handler_name)(args)
            body = {"ok": True, **result}
        except SlackError as e:
            body = {"ok": False, "error": e.code, **e.extra}
            if e.messages:
                body.setdefault("response_metadata", {})["messages"] = e.messages
        if warnings:
            body["warning"] = ",".join(warnings)
            body.setdefault("response_metadata", {})["warnings"] = warnings
        call.update(status=status, response=body)
        self.recorder.add("calls", call)
        return Response.json(body, status=status, headers=headers)

    # -- channel resolution -------------------------------------------------

    def _resolve_channel(self, ref, for_post=True):
        """Channel ID (C/G/D), #name, or a user ID (posting to a user ID posts
        in the app's DM with that user, as Slack does)."""
        if not ref:
            raise SlackError("channel_not_found")
        if ref.startswith(("U", "W")) and ref in self.users and for_post:
            return self._open_im(ref)[0]
        if ref in self.channels:
            return self.channels[ref]
        name = ref.lstrip("#")
        for ch in self.channels.values():
            if ch.get("name") == name and not ch["is_im"]:
                return ch
        raise SlackError("channel_not_found")

    def _check_can_post(self, ch):
        if ch.get("is_archived"):
            raise SlackError("is_archived")
        if not ch["is_im"] and not ch.get("bot_member", True):
            # Slack hides private channels the bot is not in.
            raise SlackError("channel_not_found" if ch.get("is_private") else "not_in_channel")

    def _open_im(self, uid):
        """Returns (channel, already_open)."""
        if uid in self.ims:
            return self.channels[self.ims[uid]], True
        cid = make_id("D", 11)
        self.channels[cid] = {
            "id": cid, "name": None, "is_im": True, "is_mpim": False, "is_private": True,
            "is_archived": False, "user": uid, "members": [uid, self.config["bot_user_id"]],
            "created": int(time.time()), "bot_member": True,
        }
        self.ims[uid] = cid
        return self.channels[cid], False

    @staticmethod
    def _validate_blocks(blocks):
        if blocks is None:
            return None
        if not isinstance(blocks, list):
            raise SlackError("invalid_blocks_format")
        if len(blocks) > 50:
            raise SlackError("invalid_blocks", ["[ERROR] no more than 50 items allowed [json-pointer:/blocks]"])
        for i, b in enumerate(blocks):
            if not isinstance(b, dict) or not isinstance(b.get("type"), str):
                raise SlackError("invalid_blocks", [f"[ERROR] missing required field: type [json-pointer:/blocks/{i}]"])
        return blocks

    # -- methods ------------------------------------------------------------

    def m_auth_test(self, args):
        c = self.config
        return {
            "url": f"https://{c['team_domain']}.slack.com/",
            "team": c["team_name"],
            "user": c["bot_name"],
            "team_id": c["team_id"],
            "user_id": c["bot_user_id"],
            "bot_id": c["bot_id"],
            "is_enterprise_install": False,
        }

    def m_chat_postMessage(self, args):
        ch = self._resolve_channel(args.get("channel"))
        self._check_can_post(ch)
        text = args.get("text")
        blocks = self._validate_blocks(as_json(args.get("blocks"), "blocks"))
        attachments = as_json(args.get("attachments"), "attachments")
        if not text and not blocks and not attachments:
            raise SlackError("no_text")
        msg = {
            "channel": ch["id"],
            "ts": self.new_ts(),
            "text": text or "",
            "blocks": blocks,
            "attachments": attachments,
            "thread_ts": args.get("thread_ts") or None,
            "reply_broadcast": as_bool(args.get("reply_broadcast", False)),
            "metadata": as_json(args.get("metadata"), "metadata"),
            "username": args.get("username"),
            "posted_at": time.time(),
            "edits": [],
        }
        self.recorder.add("messages", msg)
        return {"channel": ch["id"], "ts": msg["ts"], "message": self.message_object(msg)}

    def m_chat_update(self, args):
        cid, ts = args.get("channel"), args.get("ts")
        if not cid or cid not in self.channels:
            raise SlackError("channel_not_found")
        if not ts:
            raise SlackError("message_not_found")
        msg = self.find_message(cid, ts)
        if msg is None:
            raise SlackError("message_not_found")
        has = {k: k in args for k in ("text", "blocks", "attachments")}
        text = args.get("text")
        blocks = self._validate_blocks(as_json(args.get("blocks"), "blocks"))
        attachments = as_json(args.get("attachments"), "attachments")
        if not text and not blocks and not attachments:
            raise SlackError("no_text")
        # Keep the previous version, then update the fields the call carried.
        msg["edits"].append({"edited_ts": self.new_ts(), "at": time.time(),
                             "previous_text": msg["text"], "previous_blocks": msg["blocks"]})
        if has["text"]:
            msg["text"] = text or ""
        if has["blocks"]:
            msg["blocks"] = blocks
        if has["attachments"]:
            msg["attachments"] = attachments
        if "metadata" in args:
            msg["metadata"] = as_json(args.get("metadata"), "metadata")
        self.recorder.changed()
        obj = self.message_object(msg)
        obj.pop("ts", None)
        return {"channel": cid, "ts": ts, "text": msg["text"], "message": obj}

    def m_chat_postEphemeral(self, args):
        ch = self._resolve_channel(args.get("channel"), for_post=False)
        uid = args.get("user")
        if not uid:
            raise missing("user")
        self._check_can_post(ch)
        members = ch.get("members")
        if uid not in self.users or (members is not None and uid not in members):
            raise SlackError("user_not_in_channel")
        text = args.get("text")
        blocks = self._validate_blocks(as_json(args.get("blocks"), "blocks"))
        attachments = as_json(args.get("attachments"), "attachments")
        if not text and not blocks and not attachments:
            raise SlackError("no_text")
        ts = self.new_ts()
        self.recorder.add("ephemerals", {
            "channel": ch["id"], "user": uid, "message_ts": ts, "text": text or "",
            "blocks": blocks, "attachments": attachments, "thread_ts": args.get("thread_ts"),
            "posted_at": time.time(),
        })
        return {"message_ts": ts}

    def m_conversations_open(self, args):
        if args.get("channel"):
            ch = self.channels.get(args["channel"])
            if not ch:
                raise SlackError("channel_not_found")
            return {"channel": {"id": ch["id"]}}
        users = args.get("users")
        if isinstance(users, list):
            users = ",".join(users)
        if not users:
            raise SlackError("users_list_not_supplied")
        ids = [u.strip() for u in users.split(",") if u.strip()]
        if len(ids) > 8:
            raise SlackError("too_many_users")
        for uid in ids:
            if uid not in self.users:
                raise SlackError("user_not_found")
            if self.users[uid]["deleted"]:
                raise SlackError("user_disabled")
        if len(ids) == 1:
            ch, already = self._open_im(ids[0])
        else:
            key = ",".join(sorted(ids))
            existing = [c for c in self.channels.values() if c.get("is_mpim") and c.get("key") == key]
            already = bool(existing)
            if existing:
                ch = existing[0]
            else:
                cid = make_id("G", 11)
                ch = self.channels[cid] = {
                    "id": cid, "name": "mpdm-" + "--".join(ids) + "-1", "is_im": False, "is_mpim": True,
                    "is_private": True, "is_archived": False, "key": key,
                    "members": ids + [self.config["bot_user_id"]], "bot_member": True,
                }
        out = {"channel": {"id": ch["id"]}}
        if as_bool(args.get("return_im", False)) and ch["is_im"]:
            out["channel"].update({"created": ch["created"], "is_im": True, "is_org_shared": False,
                                   "user": ch["user"], "last_read": "0000000000.000000", "latest": None,
                                   "unread_count": 0, "unread_count_display": 0, "is_open": True,
                                   "priority": 0})
        if already:
            out.update({"no_op": True, "already_open": True})
        return out

    def m_users_lookupByEmail(self, args):
        email = args.get("email")
        if not email:
            raise missing("email")
        for u in self.users.values():
            # Slack compares addresses case-insensitively in ASCII only: a look-alike letter
            # (U+212A KELVIN SIGN for K) is another address (bytes.lower() folds ASCII only).
            if u["profile"].get("email", "").encode().lower() == email.encode().lower():
                if u["deleted"] and not self.config["lookup_deleted_users"]:
                    break
                return {"user": u}
        raise SlackError("users_not_found")

    def m_users_info(self, args):
        uid = args.get("user")
        if not uid:
            raise missing("user")
        if uid not in self.users:
            raise SlackError("user_not_found")
        return {"user": self.users[uid]}

    def m_usergroups_users_list(self, args):
        gid = args.get("usergroup")
        if not gid:
            raise missing("usergroup")
        g = self.usergroups.get(gid)
        if g is None or (g["date_delete"] and not as_bool(args.get("include_disabled", False))):
            raise SlackError("no_such_subteam")
        return {"users": list(g["users"])}

    def _check_view(self, args):
        if "view" not in args or args.get("view") in (None, ""):
            raise missing("view")
        view = as_json(args.get("view"), "view")
        if not isinstance(view, dict):
            raise SlackError("invalid_arguments", ["[ERROR] must be an object [json-pointer:/view]"])
        if view.get("type") != "modal":
            raise SlackError("invalid_arguments", ["[ERROR] must be a valid enum value [json-pointer:/view/type]"])
        if not isinstance(view.get("title"), dict):
            raise SlackError("invalid_arguments", ["[ERROR] missing required field: title [json-pointer:/view]"])
        self._validate_blocks(view.get("blocks", []))
        return view

    def _store_view(self, view, view_id=None, previous=None):
        c = self.config
        vid = view_id or make_id("V", 11)
        stored = {
            "id": vid,
            "team_id": c["team_id"],
            "type": view["type"],
            "title": view.get("title"),
            "submit": view.get("submit"),
            "close": view.get("close"),
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "previous_view_id": None,
            "root_view_id": previous["root_view_id"] if previous else vid,
            "app_id": c["app_id"],
            "app_installed_team_id": c["team_id"],
            "bot_id": c["bot_id"],
        }
        if stored["external_id"]:
            for other in self.view_store.values():
                if other["external_id"] == stored["external_id"] and other["id"] != vid:
                    raise SlackError("duplicate_external_id")
        self.view_store[vid] = stored
        return stored

    def m_views_open(self, args):
        tid = args.get("trigger_id") or args.get("interactivity_pointer")
        if not tid:
            raise missing("trigger_id")
        view = self._check_view(args)
        trig = self.triggers.get(tid)
        if trig is None:
            raise SlackError("invalid_trigger_id")
        if trig["used"]:
            raise SlackError("exchanged_trigger_id")
        if time.time() - trig["created"] > self.config["trigger_ttl"]:
            raise SlackError("expired_trigger_id")
        trig["used"] = True
        stored = self._store_view(view)
        self.recorder.add("views", {"op": "open", "trigger_id": tid, "view": stored, "at": time.time()})
        return {"view": stored}

    def m_views_update(self, args):
        vid, ext = args.get("view_id"), args.get("external_id")
        if not vid and not ext:
            raise missing("view_id")
        view = self._check_view(args)
        prev = self.view_store.get(vid) if vid else next(
            (v for v in self.view_store.values() if v["external_id"] == ext), None)
        if prev is None:
            raise SlackError("not_found")
        if args.get("hash") and args["hash"] != prev["hash"]:
            raise SlackError("hash_conflict")
        stored = self._store_view(view, view_id=prev["id"], previous=prev)
        self.recorder.add("views", {"op": "update", "view": stored, "at": time.time()})
        return {"view": stored}

    def m_apps_connections_open(self, args):
        if self.link_disabled:
            raise SlackError(self.config["link_disabled_error"])
        ticket = str(uuid.uuid4())
        self.tickets[ticket] = {"created": time.time(), "used": False}
        return {"url": f"{self.ws_base}/link/?ticket={ticket}&app_id={self.config['app_id']}"}

    # =====================================================================
    # Socket Mode
    # =====================================================================

    async def handle_socket(self, req, reader, writer):
        fault = await self.faults.apply("socket", Response.text("Service Unavailable\n", 503))
        if fault is not None:
            if isinstance(fault, Response):
                fault.headers.append(("Connection", "close"))
            return fault
        proto = ServerProtocol(max_size=2**22)
        proto.receive_data(req.raw_head)
        events = proto.events_received()
        if not events:
            return Response.text("bad WebSocket handshake\n", 400)
        ticket = req.q("ticket")
        t = self.tickets.get(ticket)
        problem = None
        if self.link_disabled:
            problem = "Socket Mode is disabled for this app"
        elif t is None:
            problem = "unknown ticket"
        elif t["used"]:
            problem = "ticket already used"
        elif time.time() - t["created"] > self.config["ticket_ttl"]:
            problem = "ticket expired"
        if problem:
            response = proto.reject(http.HTTPStatus.UNAUTHORIZED, problem + "\n")
        else:
            response = proto.accept(events[0])
        proto.send_response(response)
        for data in proto.data_to_send():
            if data:
                writer.write(data)
        await fakelib._drain(writer)
        if response.status_code != 101:
            self.recorder.add("connections", {"id": f"rejected-{next(self.counter)}", "state": "rejected",
                                              "reason": problem, "ticket": ticket, "opened_at": time.time()})
            writer.close()
            return Upgraded()
        t["used"] = True
        conn = SocketConn(self, proto, reader, writer, ticket, {k: v[0] for k, v in req.query.items()})
        self.conns[conn.id] = conn
        self.recorder.add("connections", conn.info)
        live = [c for c in self.conns.values() if c.state != "closed"]
        if len(live) > self.config["max_connections"]:
            self._send_disconnect(conn, "too_many_websockets", grace=0)
        else:
            conn.send_json({
                "type": "hello",
                "num_connections": len(live),
                "debug_info": {
                    "host": conn.info["host"],
                    "started": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
                    "build_number": 1,
                    "approximate_connection_time": 360 if conn.info["debug_reconnects"]
                    else self.config["approximate_connection_time"],
                },
                "connection_info": {"app_id": self.config["app_id"]},
            })
            refresh = self.config["auto_refresh_after"] or (360 if conn.info["debug_reconnects"] else None)
            if refresh:
                asyncio.get_running_loop().call_later(
                    float(refresh), lambda: conn.state == "open" and self._send_disconnect(conn, "refresh_requested"))
            self._flush_queue()
        await conn.run()
        return Upgraded()

    def on_client_message(self, conn, data):
        """A text frame from the app: normally an ack."""
        now = time.time()
        try:
            msg = json.loads(data.decode("utf-8"))
        except ValueError:
            self.recorder.add("socket_messages", {"connection_id": conn.id, "at": now,
                                                  "raw": data.decode("utf-8", "replace"), "error": "not JSON"})
            return
        eid = msg.get("envelope_id") if isinstance(msg, dict) else None
        if not eid:
            self.recorder.add("socket_messages", {"connection_id": conn.id, "at": now, "message": msg})
            return
        env = self.envelopes.get(eid)
        conn.info["acks"] += 1
        ack = {
            "envelope_id": eid,
            "connection_id": conn.id,
            "at": now,
            "has_payload": "payload" in msg,
            "payload": msg.get("payload"),
            "known": env is not None,
            "duplicate": False,
            "delay": None,  # seconds since the envelope was first sent
            "delay_since_last_send": None,
            "attempts_before_ack": None,
            "late": None,  # later than ack_timeout after the last send
            "type": env.type if env else None,
        }
        if env is not None and env.info["attempts"]:
            first = env.info["attempts"][0]["sent_at"]
            last = env.info["attempts"][-1]["sent_at"]
            ack["delay"] = round(now - first, 4)
            ack["delay_since_last_send"] = round(now - last, 4)
            ack["attempts_before_ack"] = len(env.info["attempts"])
            ack["late"] = (now - last) > self.config["ack_timeout"]
            if env.info["acked_at"]:
                ack["duplicate"] = True
            else:
                env.info["acked_at"] = now
                env.info["ack_delay"] = ack["delay"]
                env.info["status"] = "acked"
                env.info["ack_payload"] = msg.get("payload")
        self.recorder.add("acks", ack)
        self.recorder.changed()

    def _pick_connection(self, env):
        if env.target:
            conn = self.conns.get(env.target)
            return conn if conn and conn.state != "closed" else None
        active = sorted((c for c in self.conns.values() if c.state == "open"), key=lambda c: c.info["opened_at"])
        if not active:
            # Only draining sockets left: Slack keeps using them until they close.
            active = sorted((c for c in self.conns.values() if c.state == "draining"),
                            key=lambda c: c.info["opened_at"])
        if not active:
            return None
        conn = active[self.rr % len(active)]
        self.rr += 1
        return conn

    def deliver(self, env):
        self.envelopes[env.id] = env
        self.recorder.add("envelopes", env.info)
        self._send(env, reason="")
        return env

    def _send(self, env, reason):
        conn = self._pick_connection(env)
        attempt = len(env.info["attempts"])
        if conn is None:
            if env.type == "events_api":
                env.info["status"] = "queued"  # Slack holds events until a socket is back
                if env not in self.queued:
                    self.queued.append(env)
            elif attempt == 0:
                env.info["status"] = "undelivered"  # the user sees an error in Slack
            self.recorder.changed()
            return
        message = {
            "envelope_id": env.id,
            "type": env.type,
            "payload": env.payload,
            "accepts_response_payload": env.accepts_response_payload,
        }
        if env.type == "events_api" or attempt > 0:
            message["retry_attempt"] = attempt
            message["retry_reason"] = reason
        conn.send_json(message)
        conn.info["envelopes_sent"] += 1
        env.info["attempts"].append({"retry_attempt": attempt, "retry_reason": reason,
                                     "connection_id": conn.id, "sent_at": time.time(),
                                     "lost": conn.frozen})
        if env.info["status"] != "acked":
            env.info["status"] = "sent"
        loop = asyncio.get_running_loop()
        if attempt < len(env.retry_delays):
            loop.call_later(env.retry_delays[attempt], self._retry, env, attempt + 1)
        else:
            loop.call_later(self.config["ack_timeout"], self._give_up, env, attempt + 1)
        self.recorder.changed()

    def _retry(self, env, next_attempt):
        if env.info["acked_at"] or len(env.info["attempts"]) != next_attempt:
            return
        self._send(env, reason="timeout")

    def _give_up(self, env, attempts):
        if not env.info["acked_at"] and len(env.info["attempts"]) == attempts:
            env.info["status"] = "unacked"
            self.recorder.changed()

    def _flush_queue(self):
        queued, self.queued = self.queued, []
        for env in queued:
            if not env.info["acked_at"]:
                self._send(env, reason="")

    def _send_disconnect(self, conn, reason, grace=None):
        """Send {"type": "disconnect"} and close the socket after a grace period.
        refresh_requested and warning keep the old socket open so the client
        can connect a new one first (make-before-break)."""
        if grace is None:
            grace = {"refresh_requested": self.config["refresh_grace"],
                     "warning": self.config["warning_grace"]}.get(reason, 0.0)
        conn.send_json({"type": "disconnect", "reason": reason, "debug_info": {"host": conn.info["host"]}})
        conn.info["disconnects_sent"].append({"reason": reason, "at": time.time(), "grace": grace})
        if conn.state == "open":
            conn.info["state"] = "draining"
        conn.info["close_reason"] = f"disconnect: {reason}"
        loop = asyncio.get_running_loop()
        if grace and grace > 0:
            loop.call_later(grace, conn.close, 1000, "")
        else:
            conn.close(1000, "")
        self.recorder.changed()

    # =====================================================================
    # response_url endpoints
    # =====================================================================

    def handle_response_url(self, req):
        entry = self.response_urls.get(req.path)
        record = {"path": req.path, "at": time.time(), "content_type": req.headers.get("content-type"),
                  "raw": req.body.decode("utf-8", "replace")}
        if req.method != "POST":
            return Response.text("method not allowed\n", 405)
        if entry is None:
            record["error"] = "unknown"
            self.recorder.add("responses", record)
            return Response.json({"ok": False, "error": "invalid_url"}, status=404)
        if time.time() - entry["created"] > self.config["response_url_ttl"]:
            record["error"] = "expired_url"
        elif entry["uses"] >= self.config["response_url_uses"]:
            record["error"] = "used_url"
        if record.get("error"):
            self.recorder.add("responses", record)
            return Response.json({"ok": False, "error": record["error"]}, status=404)
        try:
            body = req.json()
        except ValueError:
            record["error"] = "invalid_payload"
            self.recorder.add("responses", record)
            return Response.json({"ok": False, "error": "invalid_payload"}, status=400)
        entry["uses"] += 1
        record.update(body=body, kind=entry["kind"], origin=entry["origin"])
        # replace_original / delete_original act on the message the button was in.
        origin = entry["origin"]
        if origin and (body.get("replace_original") or body.get("delete_original")):
            msg = self.find_message(origin["channel"], origin["ts"])
            if msg is not None:
                if body.get("delete_original"):
                    msg["deleted"] = True
                else:
                    msg["edits"].append({"edited_ts": self.new_ts(), "at": time.time(),
                                         "previous_text": msg["text"], "previous_blocks": msg["blocks"],
                                         "via": "response_url"})
                    msg["text"] = body.get("text", "")
                    msg["blocks"] = body.get("blocks")
        self.recorder.add("responses", record)
        return Response.json({"ok": True})

    # =====================================================================
    # Payload builders (shared by Socket Mode and HTTP-mode delivery)
    # =====================================================================

    def build(self, body):
        """Returns (envelope type, payload, extra info) for a delivery request.

        kind: slash_command | block_actions | view_submission | view_closed |
              event | raw
        """
        kind = body.get("kind")
        c = self.config
        if kind == "slash_command":
            uid = body.get("user_id") or self._need(body, "user_id")
            cid = body.get("channel_id", "")
            response_url, path = self.new_response_url("commands")
            trigger = self.new_trigger()
            payload = {
                "token": c["verification_token"],
                "team_id": c["team_id"],
                "team_domain": c["team_domain"],
                "channel_id": cid,
                "channel_name": body.get("channel_name", self.channel_name(cid) if cid else ""),
                "user_id": uid,
                "user_name": self.user_ref(uid)["username"],
                "command": body.get("command", "/writ"),
                "text": body.get("text", ""),
                "api_app_id": c["app_id"],
                "is_enterprise_install": "false",
                "response_url": response_url,
                "trigger_id": trigger,
            }
            return "slash_commands", payload, {"trigger_id": trigger, "response_url": response_url}

        if kind == "block_actions":
            uid = body.get("user_id") or self._need(body, "user_id")
            action_id = body.get("action_id") or self._need(body, "action_id")
            trigger = self.new_trigger()
            response_url, path = self.new_response_url("actions")
            action = {
                "action_id": action_id,
                "block_id": body.get("block_id"),
                "text": {"type": "plain_text", "text": body.get("text", action_id), "emoji": True},
                "value": body.get("value"),
                "type": body.get("action_type", "button"),
                "action_ts": f"{time.time():.6f}",
            }
            payload = {
                "type": "block_actions",
                "user": self.user_ref(uid),
                "api_app_id": c["app_id"],
                "token": c["verification_token"],
                "trigger_id": trigger,
                "team": self.team_ref(),
                "enterprise": None,
                "is_enterprise_install": False,
                "state": {"values": body.get("state_values", {})},
                "actions": [action],
            }
            if body.get("view_id"):
                view = self.view_store.get(body["view_id"])
                if view is None:
                    raise ValueError(f"unknown view_id {body['view_id']}")
                payload["container"] = {"type": "view", "view_id": view["id"]}
                payload["view"] = view
                self._fill_action_from_blocks(action, view["blocks"], body)
            else:
                cid, ts = body.get("channel_id"), body.get("message_ts")
                if not cid or not ts:
                    raise ValueError("block_actions needs channel_id and message_ts (or view_id)")
                msg = self.find_message(cid, ts)
                if msg is None and not body.get("force"):
                    raise ValueError(f"no message {ts} in {cid} (pass force: true to click anyway)")
                payload["container"] = {"type": "message", "message_ts": ts, "channel_id": cid,
                                        "is_ephemeral": False}
                payload["channel"] = {"id": cid, "name": self.channel_name(cid)}
                if msg is not None:
                    payload["message"] = self.message_object(msg)
                    self._fill_action_from_blocks(action, msg.get("blocks") or [], body)
                payload["response_url"] = response_url
                self.response_urls[path]["origin"] = {"channel": cid, "ts": ts}
            return "interactive", payload, {"trigger_id": trigger, "response_url": response_url}

        if kind in ("view_submission", "view_closed"):
            uid = body.get("user_id") or self._need(body, "user_id")
            if body.get("view_id"):
                view = self.view_store.get(body["view_id"])
                if view is None:
                    raise ValueError(f"unknown view_id {body['view_id']}")
                view = copy.deepcopy(view)
            else:
                view = self._store_view({"type": "modal", "title": {"type": "plain_text", "text": "Modal"},
                                         "callback_id": body.get("callback_id", ""),
                                         "private_metadata": body.get("private_metadata", ""),
                                         "blocks": body.get("blocks", [])})
                view = copy.deepcopy(view)
            view["state"] = {"values": body.get("values", {})}
            payload = {
                "type": kind,
                "team": self.team_ref(),
                "user": self.user_ref(uid),
                "api_app_id": c["app_id"],
                "token": c["verification_token"],
                "view": view,
                "is_enterprise_install": False,
                "enterprise": None,
            }
            extra = {"view_id": view["id"]}
            if kind == "view_submission":
                trigger = self.new_trigger()
                payload["trigger_id"] = trigger
                payload["response_urls"] = []
                extra["trigger_id"] = trigger
            else:
                payload["is_cleared"] = bool(body.get("is_cleared", False))
            return "interactive", payload, extra

        if kind == "event":
            event = body.get("event") or self._need(body, "event")
            event = dict(event)
            event.setdefault("event_ts", f"{time.time():.6f}")
            payload = {
                "token": c["verification_token"],
                "team_id": c["team_id"],
                "api_app_id": c["app_id"],
                "event": event,
                "type": "event_callback",
                "event_id": "Ev" + make_id("", 9),
                "event_time": int(time.time()),
                "authorizations": [{"enterprise_id": None, "team_id": c["team_id"],
                                    "user_id": c["bot_user_id"], "is_bot": True,
                                    "is_enterprise_install": False}],
                "is_ext_shared_channel": False,
                "event_context": secrets.token_hex(12),
            }
            return "events_api", payload, {"event_id": payload["event_id"]}

        if kind == "raw":
            etype = body.get("envelope_type") or self._need(body, "envelope_type")
            return etype, body.get("payload", {}), {}

        raise ValueError("kind must be slash_command, block_actions, view_submission, view_closed, event or raw")

    @staticmethod
    def _need(body, field):
        raise ValueError(f"missing {field}")

    @staticmethod
    def _fill_action_from_blocks(action, blocks, body):
        """Copy block_id, value and label from the button the test clicked."""
        for block in blocks:
            elements = list(block.get("elements", []))
            if block.get("accessory"):
                elements.append(block["accessory"])
            if block.get("element"):
                elements.append(block["element"])
            for el in elements:
                if el.get("action_id") == action["action_id"]:
                    if action["block_id"] is None:
                        action["block_id"] = block.get("block_id")
                    if action["value"] is None:
                        action["value"] = el.get("value")
                    if "text" not in body and isinstance(el.get("text"), dict):
                        action["text"] = el["text"]
                    if "action_type" not in body:
                        action["type"] = el.get("type", action["type"])
                    return
        if not body.get("force"):
            raise ValueError(f"no element with action_id {action['action_id']!r} (pass force: true)")

    # =====================================================================
    # HTTP-mode delivery (Slack POSTing to the app's Request URL)
    # =====================================================================

    async def http_deliver(self, body):
        url = body.get("url")
        if not url:
            raise ValueError("missing url")
        etype, payload, extra = self.build(body)
        if etype == "slash_commands":
            raw = urllib.parse.urlencode(payload).encode()
            ctype = "application/x-www-form-urlencoded"
        elif etype == "interactive":
            raw = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
            ctype = "application/x-www-form-urlencoded"
        else:
            raw = json.dumps(payload).encode()
            ctype = "application/json"
        if "raw_body" in body:  # a test that wants exact bytes
            raw = body["raw_body"].encode()
        ts = str(body.get("timestamp", int(time.time())))
        secret = body.get("signing_secret", self.config["signing_secret"])
        signature = slack_signature.sign(secret, ts, raw)
        if body.get("bad_signature"):
            signature = "v0=" + "0" * 64
        headers = {
            "Content-Type": ctype,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
        }
        if body.get("retry_num") is not None:
            headers["X-Slack-Retry-Num"] = str(body["retry_num"])
            headers["X-Slack-Retry-Reason"] = body.get("retry_reason", "http_timeout")
        timeout = float(body.get("timeout", 10))
        record = {"seq": next(self.counter), "url": url, "kind": body.get("kind"), "at": time.time(),
                  "request": {"headers": headers, "body": raw.decode()}, "payload": payload, **extra}

        def post():
            req = urllib.request.Request(url, data=raw, headers=headers, method="POST")
            start = time.monotonic()
            try:
                with urllib.request.urlopen(req, timeout=timeout) as resp:
                    return {"status": resp.status, "headers": dict(resp.headers.items()),
                            "body": resp.read().decode("utf-8", "replace"),
                            "elapsed": round(time.monotonic() - start, 4)}
            except urllib.error.HTTPError as e:
                return {"status": e.code, "headers": dict(e.headers.items()),
                        "body": e.read().decode("utf-8", "replace"),
                        "elapsed": round(time.monotonic() - start, 4)}
            except Exception as e:  # connection refused, timeout, ...
                return {"status": None, "error": repr(e), "elapsed": round(time.monotonic() - start, 4)}

        record["response"] = await asyncio.to_thread(post)
        # Slack gives the app 3 seconds to answer.
        record["late"] = record["response"]["elapsed"] > self.config["ack_timeout"]
        self.recorder.add("http_deliveries", record)
        return record

    # =====================================================================
    # Control API
    # =====================================================================

    async def handle_control(self, req):
        route = req.path[len("/_fake"):].rstrip("/") or "/"
        try:
            body = req.json() if req.method == "POST" else {}
        except ValueError:
            return control_error("body is not JSON")
        if body is None:
            body = {}
        try:
            return await self._control(req, route, body)
        except (ValueError, KeyError, TypeError) as e:
            return control_error(str(e))

    async def _control(self, req, route, body):
        R = Response.json
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
        if route == "/reset":
            self.recorder.reset()
            self.envelopes.clear()
            self.queued.clear()
            self.ratelimits.clear()
            self.faults.clear()
            self.link_disabled = False
            if body.get("seeds"):
                self._reset_seeds()
            return R({"ok": True})
        if route == "/seed":
            return R({"ok": True, "seeded": self.seed(body)})
        if route == "/config":
            if req.method == "POST":
                unknown = set(body) - set(DEFAULT_CONFIG)
                if unknown:
                    raise ValueError(f"unknown config keys: {sorted(unknown)}")
                self.config.update(body)
            return R(self.config)
        if route == "/ratelimit":
            return R({"ok": True, "rules": self.ratelimits.set(body)})
        if route == "/down":
            state = self.faults.set(body)
            if body.get("drop_sockets"):
                for conn in list(self.conns.values()):
                    conn.drop("dropped by /_fake/down")
            return R({"ok": True, "faults": state})
        if route == "/up":
            return R({"ok": True, "faults": self.faults.clear(body.get("scope", "all"))})
        if route == "/trigger":
            return R({"trigger_id": self.new_trigger()})
        if route == "/wait":
            return await fakelib.wait_endpoint(self.recorder, req)

        # -- Socket Mode controls ------------------------------------------
        if route == "/socket/deliver":
            etype, payload, extra = self.build(body)
            if "retry" in body:
                delays = self.config["events_retry_delays"] if body["retry"] is True else body["retry"] or []
            else:
                delays = self.config["events_retry_delays"] if etype == "events_api" else []
            accepts = body.get("accepts_response_payload", etype in ("slash_commands", "interactive"))
            env = Envelope(etype, payload, accepts, delays, target=body.get("connection_id"))
            self.deliver(env)
            first = env.info["attempts"][0] if env.info["attempts"] else None
            return R({"envelope_id": env.id, "type": etype, "status": env.info["status"],
                      "delivered": first is not None, "connection_id": first and first["connection_id"],
                      "payload": payload, **extra})
        if route == "/socket/disconnect":
            reason = body.get("reason", "refresh_requested")
            targets = self._targets(body)
            for conn in targets:
                self._send_disconnect(conn, reason, grace=body.get("grace"))
            if reason == "link_disabled":
                self.link_disabled = True
            return R({"ok": True, "connections": [c.id for c in targets]})
        if route == "/socket/drop":
            targets = self._targets(body)
            for conn in targets:
                conn.drop("dropped by /_fake/socket/drop")
            return R({"ok": True, "connections": [c.id for c in targets]})
        if route == "/socket/freeze":
            targets = self._targets(body)
            for conn in targets:
                conn.frozen = True
                conn.info["frozen"] = True
            return R({"ok": True, "connections": [c.id for c in targets]})
        if route == "/socket/enable":
            self.link_disabled = False
            return R({"ok": True})

        # -- HTTP mode -------------------------------------------------------
        if route == "/http/deliver":
            return R(await self.http_deliver(body))

        # -- read recordings: GET /_fake/<collection>?field=value ------------
        name = route.strip("/").replace("http/deliveries", "http_deliveries")
        if name in self.recorder.lists:
            return R({"items": self.recorder.select(name, fakelib.query_where(req))})
        if name == "users":
            return R({"items": list(self.users.values())})
        if name == "channels":
            return R({"items": list(self.channels.values())})
        if name == "usergroups":
            return R({"items": list(self.usergroups.values())})
        return control_error(f"unknown control endpoint {req.path}", status=404)

    def _targets(self, body):
        cid = body.get("connection_id")
        live = [c for c in self.conns.values() if c.state != "closed"]
        if cid:
            live = [c for c in live if c.id == cid]
            if not live:
                raise ValueError(f"no open connection {cid}")
        return live

    def dump(self):
        return {
            "config": self.config,
            "link_disabled": self.link_disabled,
            "faults": self.faults.describe(),
            "ratelimits": self.ratelimits.describe(),
            "users": self.users,
            "channels": self.channels,
            "usergroups": self.usergroups,
            **{name: items for name, items in self.recorder.lists.items()},
        }


# method -> (handler, token type, POST only)
METHODS = {
    "auth.test": ("m_auth_test", "bot", False),
    "chat.postMessage": ("m_chat_postMessage", "bot", False),
    "chat.update": ("m_chat_update", "bot", False),
    "chat.postEphemeral": ("m_chat_postEphemeral", "bot", False),
    "conversations.open": ("m_conversations_open", "bot", False),
    "users.lookupByEmail": ("m_users_lookupByEmail", "bot", False),
    "users.info": ("m_users_info", "bot", False),
    "usergroups.users.list": ("m_usergroups_users_list", "bot", False),
    "views.open": ("m_views_open", "bot", False),
    "views.update": ("m_views_update", "bot", False),
    "apps.connections.open": ("m_apps_connections_open", "app", True),
}


def _parse_multipart(content_type, body):
    """Plain form fields from a multipart/form-data body (files are ignored)."""
    import email.parser
    import email.policy

    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    out = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name and not part.get_filename():
            out[name] = part.get_content() if part.get_content_maintype() == "text" else part.get_payload(decode=True).decode()
    return out


def _counter():
    n = 0
    while True:
        n += 1
        yield n


def main():
    parser = fakelib.base_arguments("A local fake of Slack's Web API, Socket Mode and HTTP request delivery.")
    parser.add_argument("--bot-token", action="append", help="accepted xoxb- token (repeatable)")
    parser.add_argument("--app-token", action="append", help="accepted xapp- token (repeatable)")
    parser.add_argument("--signing-secret", help="signing secret for HTTP-mode deliveries")
    parser.add_argument("--config", help="JSON object merged into the configuration (same keys as /_fake/config)")
    args = parser.parse_args()
    overrides = json.loads(args.config) if args.config else {}
    if args.bot_token:
        overrides["bot_tokens"] = args.bot_token
    if args.app_token:
        overrides["app_tokens"] = args.app_token
    if args.signing_secret:
        overrides["signing_secret"] = args.signing_secret
    fake = FakeSlack(overrides)
    if args.seed:
        with open(args.seed) as f:
            fake.seed(json.load(f))
    fakelib.run(fake, args)


if __name__ == "__main__":
    main()
