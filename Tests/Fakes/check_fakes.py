#!/usr/bin/env python3
"""check_fakes.py - keeps the fakes honest.

    python3 Tests/Fakes/check_fakes.py [--venv DIR] [--verbose]

Starts fake_slack.py and fake_pagerduty.py and drives them with clients that
were NOT written against the fakes:

* Slack's official Python SDK, slack_sdk: WebClient for every Web API method
  the fake serves (responses must parse into SlackResponse; ok:false must
  raise SlackApiError with the documented error code), its
  RateLimitErrorRetryHandler against the fake's 429 + Retry-After, its
  built-in SocketModeClient (apps.connections.open, hello, slash command,
  button click, modal, event retry, refresh_requested reconnect), and its
  SignatureVerifier against the fake's HTTP-mode deliveries;
* a raw WebSocket client (websockets) for what the SDK hides: hello's shape,
  pings, round-robin across connections, too_many_websockets, warning,
  link_disabled, single-use tickets;
* urllib for PagerDuty (no official client is needed: the contract is HTTP).

Prints one PASS/FAIL line per check, then "N passed, M failed"; exits 1 on
any failure. slack_sdk is installed into a virtualenv (default
/tmp/writ-fakes-venv) on first use; PyPI must be reachable for that step only.
"""

import argparse
import os
import subprocess
import sys

sys.dont_write_bytecode = True

HERE = os.path.dirname(os.path.abspath(__file__))
SLACK_SDK = "slack_sdk==3.48.0"  # pinned so a new SDK release cannot change the verdict silently
DEFAULT_VENV = "/tmp/writ-fakes-venv"


# ---------------------------------------------------------------------------
# Stage 0: make sure we run inside a venv that has slack_sdk (and websockets)
# ---------------------------------------------------------------------------


def ensure_venv(venv):
    try:
        import slack_sdk  # noqa: F401
        import websockets  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("WRIT_CHECK_IN_VENV"):
        sys.exit(f"check_fakes: {venv} still lacks slack_sdk or websockets")
    py = os.path.join(venv, "bin", "python")
    # Debian's interpreter sees python3-websockets through --system-site-packages.
    base = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    ok = os.path.exists(py) and subprocess.run(
        [py, "-c", "import slack_sdk, websockets"], capture_output=True).returncode == 0
    if not ok:
        if not os.path.exists(py) or subprocess.run([py, "-c", "import websockets"],
                                                     capture_output=True).returncode != 0:
            print(f"check_fakes: creating virtualenv {venv} (base {base})", flush=True)
            subprocess.run([base, "-m", "venv", "--clear", "--system-site-packages", venv], check=True)
        print(f"check_fakes: pip install {SLACK_SDK}", flush=True)
        subprocess.run([py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", SLACK_SDK],
                       check=True)
    os.environ["WRIT_CHECK_IN_VENV"] = "1"
    os.execv(py, [py, os.path.abspath(__file__), *sys.argv[1:]])


parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--venv", default=DEFAULT_VENV, help=f"virtualenv for slack_sdk (default {DEFAULT_VENV})")
parser.add_argument("--verbose", action="store_true", help="show SDK logs and the fakes' stderr")
ARGS = parser.parse_args()
ensure_venv(ARGS.venv)

# ---------------------------------------------------------------------------
# From here on slack_sdk is importable.
# ---------------------------------------------------------------------------

import asyncio  # noqa: E402
import atexit  # noqa: E402
import shutil  # noqa: E402
import http.server  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import queue  # noqa: E402
import signal  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import urllib.error  # noqa: E402
import urllib.parse  # noqa: E402
import urllib.request  # noqa: E402
import warnings  # noqa: E402

import websockets  # noqa: E402
from slack_sdk import WebClient  # noqa: E402
from slack_sdk.errors import SlackApiError  # noqa: E402
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler  # noqa: E402
from slack_sdk.signature import SignatureVerifier  # noqa: E402
from slack_sdk.socket_mode import SocketModeClient  # noqa: E402
from slack_sdk.socket_mode.response import SocketModeResponse  # noqa: E402
from slack_sdk.web.slack_response import SlackResponse  # noqa: E402

sys.path.insert(0, HERE)
import slack_signature  # noqa: E402

logging.basicConfig(level=logging.DEBUG if ARGS.verbose else logging.CRITICAL)
# slack_sdk warns client-side when a message has no top-level text; some checks do that on purpose.
warnings.filterwarnings("ignore", message="The top-level `text` argument is missing")

BOT = "xoxb-writ-fake-bot-token"
APP = "xapp-1-A0WRITTEST-1-writ-fake-app-token"
SECRET = "writ-fake-signing-secret"
PD_TOKEN = "pd-fake-token"
PD_ACCEPT = "application/vnd.pagerduty+json;version=2"

RESULTS = []


def check(name):
    """Decorator: run the function as one check; an exception is a FAIL."""

    def wrap(fn):
        start = time.monotonic()
        try:
            fn()
            RESULTS.append((name, None))
            print(f"PASS {name} ({time.monotonic() - start:.1f}s)", flush=True)
        except Exception as e:
            detail = f"{type(e).__name__}: {e}"
            if ARGS.verbose:
                detail += "\n" + traceback.format_exc()
            RESULTS.append((name, detail))
            print(f"FAIL {name}: {detail}", flush=True)
        return fn

    return wrap


def expect(cond, message):
    if not cond:
        raise AssertionError(message)


def expect_slack_error(code, fn, status=200):
    try:
        fn()
    except SlackApiError as e:
        expect(e.response["error"] == code, f"error {e.response['error']!r}, want {code!r}")
        expect(e.response.status_code == status, f"HTTP {e.response.status_code}, want {status}")
        expect(e.response["ok"] is False, "ok is not false")
        return e
    raise AssertionError(f"no SlackApiError (wanted {code})")


# ---------------------------------------------------------------------------
# Starting the fakes and talking to their control APIs
# ---------------------------------------------------------------------------


class Fake:
    def __init__(self, script, state_file):
        self.state_file = state_file
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, script), "--port", "0", "--state-file", state_file],
            stdout=subprocess.PIPE, stderr=None if ARGS.verbose else subprocess.DEVNULL, text=True)
        line = self._readline(15)
        if not line.startswith("READY "):
            self.proc.kill()
            raise RuntimeError(f"{script} did not print READY (got {line!r})")
        self.url = line.split()[1]

    def _readline(self, timeout):
        box = []
        t = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        return box[0].strip() if box else ""

    def control(self, path, body=None, method=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + "/_fake" + path, data=data, method=method or ("POST" if data else "GET"),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            raise AssertionError(f"control {path} -> HTTP {e.code}: {e.read().decode()}")

    def wait(self, collection, where=None, count=1, timeout=10):
        return self.control("/wait", {"collection": collection, "where": where or {}, "count": count,
                                      "timeout": timeout})["items"]

    def items(self, collection, **where):
        qs = urllib.parse.urlencode(where)
        return self.control(f"/{collection}" + (f"?{qs}" if qs else ""))["items"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


TMP = tempfile.mkdtemp(prefix="writ-fakes-")
# The fakes' state files: removed when the check ends, whatever its outcome.
atexit.register(shutil.rmtree, TMP, ignore_errors=True)
slack = pd = None


@check("slack_signature: Slack's published test vector and the 5-minute window")
def _():
    problems = slack_signature.self_test()
    expect(not problems, "; ".join(problems))


@check("slack_signature agrees with slack_sdk.signature.SignatureVerifier")
def _():
    sdk = SignatureVerifier(slack_signature.DOC_SECRET)
    got = sdk.generate_signature(timestamp=slack_signature.DOC_TIMESTAMP, body=slack_signature.DOC_BODY)
    expect(got == slack_signature.DOC_SIGNATURE, f"SDK computed {got} for the published vector")
    body = '{"type":"event_callback","event":{"text":"h\u00e9"}}'
    ours = slack_signature.sign("s3cret", "1700000000", body)
    theirs = SignatureVerifier("s3cret").generate_signature(timestamp="1700000000", body=body)
    expect(ours == theirs, f"ours {ours} != SDK {theirs}")


@check("fakes start and print READY")
def _():
    global slack, pd
    slack = Fake("fake_slack.py", os.path.join(TMP, "slack-state.json"))
    pd = Fake("fake_pagerduty.py", os.path.join(TMP, "pd-state.json"))
    expect(slack.control("/health")["ok"] and pd.control("/health")["ok"], "health")


if slack is None or pd is None:
    print("0 passed, 1 failed: the fakes did not start")
    sys.exit(1)

API = slack.url + "/api/"
bot = WebClient(token=BOT, base_url=API)

USERS = {
    "alice": {"id": "U0ALICE001", "email": "alice@example.com", "real_name": "Alice Admin"},
    "bob": {"id": "U0BOB00001", "email": "bob@example.com", "real_name": "Bob"},
    "guest": {"id": "U0GUEST001", "email": "guest@partner.example", "is_ultra_restricted": True},
    "gone": {"id": "U0GONE0001", "email": "gone@example.com", "deleted": True},
}
slack.control("/seed", {
    "users": list(USERS.values()),
    "channels": [
        {"id": "C0APPROVE1", "name": "approvals", "members": ["U0ALICE001", "U0BOB00001"]},
        {"id": "C0SECRET01", "name": "secret", "is_private": True, "bot_member": False},
    ],
    "usergroups": [{"id": "S0ONCALL01", "handle": "oncall", "users": ["U0ALICE001", "U0BOB00001"]}],
})

BUTTONS = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*bob* asks for root on db1"}},
    {"type": "actions", "block_id": "decision", "elements": [
        {"type": "button", "action_id": "approve", "value": "req-42", "style": "primary",
         "text": {"type": "plain_text", "text": "Approve"}},
        {"type": "button", "action_id": "deny", "value": "req-42", "style": "danger",
         "text": {"type": "plain_text", "text": "Deny"}},
    ]},
]
MODAL = {"type": "modal", "callback_id": "deny_reason", "private_metadata": "req-42",
         "title": {"type": "plain_text", "text": "Deny request"},
         "submit": {"type": "plain_text", "text": "Deny"},
         "blocks": [{"type": "input", "block_id": "reason", "label": {"type": "plain_text", "text": "Why?"},
                     "element": {"type": "plain_text_input", "action_id": "text"}}]}
posted = {}


# ---------------------------------------------------------------------------
# Web API through slack_sdk.WebClient
# ---------------------------------------------------------------------------


@check("auth.test parses into SlackResponse with the bot identity")
def _():
    r = bot.auth_test()
    expect(isinstance(r, SlackResponse) and r.status_code == 200, "not a 200 SlackResponse")
    expect(r["ok"] is True and r["user_id"] == "U0WRITBOT1" and r["bot_id"] == "B0WRITBOT1", r.data)
    expect(r["team_id"] == "T0WRITTEST" and r["url"].startswith("https://"), r.data)
    expect(r.headers.get("X-Slack-Req-Id") or r.headers.get("x-slack-req-id"), "no X-Slack-Req-Id header")


@check("chat.postMessage (JSON body) returns ts, channel and message; stored")
def _():
    r = bot.chat_postMessage(channel="C0APPROVE1", text="bob asks for root on db1", blocks=BUTTONS)
    expect(r["channel"] == "C0APPROVE1" and r["ts"] and r["message"]["ts"] == r["ts"], r.data)
    expect(r["message"]["text"] == "bob asks for root on db1" and r["message"]["blocks"] == BUTTONS, r.data)
    expect("warning" not in r.data, f"unexpected warning {r.get('warning')}")  # SDK sends charset=utf-8
    posted.update(channel=r["channel"], ts=r["ts"])
    call = slack.items("calls", method="chat.postMessage")[-1]
    expect(call["encoding"] == "json" and call["http_method"] == "POST", call)
    stored = slack.items("messages", ts=r["ts"])
    expect(stored and stored[0]["blocks"] == BUTTONS, "message not stored")


@check("chat.postMessage (form body, blocks as a JSON string; thread reply)")
def _():
    r = bot.api_call("chat.postMessage", data={"channel": "C0APPROVE1", "text": "in thread",
                                               "thread_ts": posted["ts"], "blocks": json.dumps(BUTTONS[:1])})
    expect(r["ok"] and r["message"]["thread_ts"] == posted["ts"], r.data)
    expect(slack.items("calls", method="chat.postMessage")[-1]["encoding"] == "form", "not form-encoded")
    r = bot.chat_postMessage(channel="#approvals", text="by name")
    expect(r["channel"] == "C0APPROVE1", "channel name not resolved")
    r = bot.chat_postMessage(channel="U0BOB00001", text="to a user id")
    expect(r["channel"].startswith("D"), "posting to a user ID must land in the DM")


@check("blocks-only message is accepted; charset warnings as Slack documents them")
def _():
    r = bot.chat_postMessage(channel="C0APPROVE1", blocks=BUTTONS)
    expect(r["ok"] and r["message"]["text"] == "", r.data)

    def raw(ctype, body):
        req = urllib.request.Request(API + "auth.test", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {BOT}", "Content-Type": ctype})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.load(resp)

    expect(raw("application/json", b"{}").get("warning") == "missing_charset", "JSON without charset")
    expect(raw("application/json; charset=utf-8", b"{}").get("warning") is None, "JSON with charset")
    expect(raw("application/x-www-form-urlencoded; charset=utf-8", b"a=1").get("warning") == "superfluous_charset",
           "form with charset")


@check("chat.update changes the stored message and keeps its history")
def _():
    r = bot.chat_update(channel=posted["channel"], ts=posted["ts"], text="approved by alice", blocks=[])
    expect(r["ts"] == posted["ts"] and r["text"] == "approved by alice" and r["channel"] == posted["channel"], r.data)
    m = slack.items("messages", ts=posted["ts"])[0]
    expect(m["text"] == "approved by alice" and m["blocks"] == [] and len(m["edits"]) == 1, m)
    # leave the buttons in place for the click test
    bot.chat_update(channel=posted["channel"], ts=posted["ts"], text="bob asks for root on db1", blocks=BUTTONS)


@check("chat.postEphemeral returns message_ts; non-members get user_not_in_channel")
def _():
    r = bot.chat_postEphemeral(channel="C0APPROVE1", user="U0ALICE001", text="only you")
    expect(r["message_ts"], r.data)
    expect(slack.items("ephemerals", user="U0ALICE001"), "ephemeral not recorded")
    expect_slack_error("user_not_in_channel",
                       lambda: bot.chat_postEphemeral(channel="C0APPROVE1", user="U0GUEST001", text="x"))


@check("conversations.open users=U → D channel; second open says already_open")
def _():
    r = bot.conversations_open(users="U0ALICE001")
    expect(r["channel"]["id"].startswith("D"), r.data)
    r2 = bot.conversations_open(users=["U0ALICE001"], return_im=True)
    expect(r2["channel"]["id"] == r["channel"]["id"] and r2["already_open"] and r2["channel"]["is_im"], r2.data)
    expect_slack_error("user_disabled", lambda: bot.conversations_open(users="U0GONE0001"))
    # slack_sdk refuses to send this one itself, so go around its argument check.
    expect_slack_error("users_list_not_supplied", lambda: bot.api_call("conversations.open"))


@check("users.lookupByEmail finds the user case-insensitively (SDK POST and plain GET)")
def _():
    r = bot.users_lookupByEmail(email="Alice@Example.com")
    expect(r["user"]["id"] == "U0ALICE001" and r["user"]["profile"]["email"] == "alice@example.com", r.data)
    # WebClient always POSTs; Slack (and the fake) also take GET with a query string.
    req = urllib.request.Request(API + "users.lookupByEmail?email=bob%40example.com",
                                 headers={"Authorization": f"Bearer {BOT}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        expect(json.load(resp)["user"]["id"] == "U0BOB00001", "GET lookup")
    call = slack.items("calls", method="users.lookupByEmail")[-1]
    expect(call["http_method"] == "GET" and call["encoding"] == "query", call)


@check("users.info: guest flags, deleted, is_bot, team_id, profile.email")
def _():
    g = bot.users_info(user="U0GUEST001")["user"]
    expect(g["is_restricted"] and g["is_ultra_restricted"] and not g["deleted"], g)
    d = bot.users_info(user="U0GONE0001")["user"]
    expect(d["deleted"] is True and d["team_id"] == "T0WRITTEST", d)
    b = bot.users_info(user="U0WRITBOT1")["user"]
    expect(b["is_bot"] is True and "email" not in b["profile"], b)
    a = bot.users_info(user="U0ALICE001")["user"]
    expect(a["profile"]["email"] == "alice@example.com" and a["is_restricted"] is False, a)


@check("usergroups.users.list returns the members")
def _():
    r = bot.usergroups_users_list(usergroup="S0ONCALL01")
    expect(r["users"] == ["U0ALICE001", "U0BOB00001"], r.data)
    expect_slack_error("no_such_subteam", lambda: bot.usergroups_users_list(usergroup="S0NOPE0000"))


@check("documented errors raise SlackApiError (HTTP 200, ok:false)")
def _():
    expect_slack_error("channel_not_found", lambda: bot.chat_postMessage(channel="C0NOWHERE1", text="x"))
    expect_slack_error("channel_not_found", lambda: bot.chat_postMessage(channel="C0SECRET01", text="x"))
    expect_slack_error("no_text", lambda: bot.chat_postMessage(channel="C0APPROVE1"))
    expect_slack_error("users_not_found", lambda: bot.users_lookupByEmail(email="nobody@example.com"))
    expect_slack_error("user_not_found", lambda: bot.users_info(user="U0NOBODY01"))
    expect_slack_error("message_not_found", lambda: bot.chat_update(channel="C0APPROVE1", ts="1.000001", text="x"))
    expect_slack_error("invalid_trigger_id", lambda: bot.views_open(trigger_id="123.456.abc", view=MODAL))
    e = expect_slack_error("invalid_arguments", lambda: bot.api_call("views.open", json={"view": MODAL}))
    expect(e.response["response_metadata"]["messages"], "invalid_arguments without messages")
    expect_slack_error("invalid_blocks", lambda: bot.chat_postMessage(channel="C0APPROVE1", text="x",
                                                                      blocks=[{"text": "no type"}]))
    expect_slack_error("invalid_auth", lambda: WebClient(token="xoxb-wrong", base_url=API).auth_test())
    expect_slack_error("not_authed", lambda: WebClient(base_url=API).auth_test())
    expect_slack_error("not_allowed_token_type", lambda: bot.apps_connections_open(app_token=BOT))
    expect_slack_error("not_allowed_token_type", lambda: WebClient(token=APP, base_url=API).chat_postMessage(
        channel="C0APPROVE1", text="x"))
    expect_slack_error("unknown_method", lambda: bot.api_call("nope.nothing"))


@check("429 + Retry-After: RateLimitErrorRetryHandler waits and succeeds")
def _():
    before = len(slack.items("calls", method="chat.postMessage"))
    slack.control("/ratelimit", {"method": "chat.postMessage", "count": 2, "retry_after": 1})
    client = WebClient(token=BOT, base_url=API, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=3)])
    start = time.monotonic()
    r = client.chat_postMessage(channel="C0APPROVE1", text="after the storm")
    elapsed = time.monotonic() - start
    expect(r["ok"], r.data)
    calls = slack.items("calls", method="chat.postMessage")[before:]
    expect([c["status"] for c in calls] == [429, 429, 200], [c["status"] for c in calls])
    expect(calls[0]["response"] == {"ok": False, "error": "ratelimited"}, calls[0]["response"])
    expect(elapsed >= 2.0, f"the SDK did not wait Retry-After ({elapsed:.2f}s)")


@check("429 without a retry handler: SlackApiError 'ratelimited' with Retry-After")
def _():
    slack.control("/ratelimit", {"method": "users.info", "retry_after": 7})  # every call until cleared
    for _ in range(2):
        e = expect_slack_error("ratelimited", lambda: bot.users_info(user="U0ALICE001"), status=429)
        expect(e.response.headers.get("Retry-After") == "7", dict(e.response.headers))
    slack.control("/ratelimit", {"method": "users.info", "count": 0})
    expect(bot.users_info(user="U0ALICE001")["ok"], "not cleared")


@check("down modes: 503, refused (RST) and hung requests; then back up")
def _():
    slack.control("/down", {"mode": "503", "scope": "web"})
    try:
        bot.auth_test()
        raise AssertionError("no error while down")
    except SlackApiError as e:
        expect(e.response.status_code == 503, f"HTTP {e.response.status_code}")
    slack.control("/down", {"mode": "refuse", "scope": "web"})
    try:
        bot.auth_test()
        raise AssertionError("no error while refusing")
    except SlackApiError:
        raise AssertionError("refused connection produced an API answer")
    except Exception:
        pass
    slack.control("/down", {"mode": "hang", "scope": "web"})
    start = time.monotonic()
    try:
        WebClient(token=BOT, base_url=API, timeout=1).auth_test()
        raise AssertionError("no timeout while hanging")
    except SlackApiError:
        raise AssertionError("hung request produced an API answer")
    except Exception:
        expect(time.monotonic() - start >= 0.9, "returned before the client timeout")
    slack.control("/up", {})
    expect(bot.auth_test()["ok"], "not back up")


# ---------------------------------------------------------------------------
# Socket Mode through slack_sdk's built-in SocketModeClient
# ---------------------------------------------------------------------------

received = queue.Queue()


def listener(client, req):
    """Acks the way an app does; decides per envelope what to do."""
    received.put(req)
    if req.type == "events_api" and req.payload["event"].get("text") == "ignore-first" and req.retry_attempt == 0:
        return  # do not ack: the fake must retry
    if req.type == "slash_commands":
        client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id,
                                                            payload={"text": f"got {req.payload['text']}"}))
        return
    client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
    if req.type == "interactive" and req.payload["type"] == "block_actions" \
            and req.payload["actions"][0]["action_id"] == "deny":
        # Open a modal with the trigger_id, within its 3 seconds.
        try:
            r = bot.views_open(trigger_id=req.payload["trigger_id"], view=MODAL)
            received.put(("views.open", r.data))
        except SlackApiError as e:
            received.put(("views.open", e.response.data))


def next_received(pred, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            item = received.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if pred(item):
            return item
    raise AssertionError("the SocketModeClient listener did not get it")


sm = SocketModeClient(app_token=APP, web_client=WebClient(base_url=API),
                      logger=logging.getLogger("socket_mode"), ping_interval=2)
sm.socket_mode_request_listeners.append(listener)
conn1 = {}


@check("SocketModeClient connects via apps.connections.open and gets hello")
def _():
    sm.connect()
    conns = slack.wait("connections", {"state": "open"})
    conn1.update(conns[0])
    calls = slack.items("calls", method="apps.connections.open")
    expect(calls and calls[-1]["status"] == 200 and calls[-1]["http_method"] == "POST", "apps.connections.open")
    expect(calls[-1]["token"] == APP, "app token not sent as Bearer")
    expect(sm.is_connected(), "client says it is not connected")


@check("slash command over Socket Mode: delivered, acked with payload, ack recorded")
def _():
    d = slack.control("/socket/deliver", {"kind": "slash_command", "user_id": "U0BOB00001",
                                          "channel_id": "C0APPROVE1", "command": "/writ", "text": "root db1"})
    expect(d["delivered"] and d["type"] == "slash_commands", d)
    req = next_received(lambda r: getattr(r, "envelope_id", None) == d["envelope_id"])
    expect(req.payload["command"] == "/writ" and req.payload["user_id"] == "U0BOB00001", req.payload)
    expect(req.accepts_response_payload is True, "slash commands accept a response payload")
    ack = slack.wait("acks", {"envelope_id": d["envelope_id"]})[0]
    expect(ack["payload"] == {"text": "got root db1"} and ack["known"] and not ack["late"], ack)
    expect(ack["delay"] is not None and ack["delay"] < 3, ack)


@check("button click (block_actions) over Socket Mode; views.open with its trigger_id")
def _():
    d = slack.control("/socket/deliver", {"kind": "block_actions", "user_id": "U0ALICE001",
                                          "channel_id": posted["channel"], "message_ts": posted["ts"],
                                          "action_id": "deny"})
    req = next_received(lambda r: getattr(r, "envelope_id", None) == d["envelope_id"])
    action = req.payload["actions"][0]
    expect(action["value"] == "req-42" and action["block_id"] == "decision" and action["type"] == "button", action)
    expect(req.payload["message"]["ts"] == posted["ts"] and req.payload["container"]["type"] == "message",
           req.payload)
    expect(req.payload["user"]["id"] == "U0ALICE001" and req.payload["team"]["id"] == "T0WRITTEST", req.payload)
    expect(req.payload["response_url"].startswith(slack.url + "/actions/"), req.payload["response_url"])
    slack.wait("acks", {"envelope_id": d["envelope_id"]})
    _, view = next_received(lambda r: isinstance(r, tuple) and r[0] == "views.open")
    expect(view["ok"] and view["view"]["id"].startswith("V") and view["view"]["callback_id"] == "deny_reason", view)
    posted["view_id"] = view["view"]["id"]
    expect_slack_error("exchanged_trigger_id",
                       lambda: bot.views_open(trigger_id=req.payload["trigger_id"], view=MODAL))


@check("view_submission over Socket Mode carries the view and its state values")
def _():
    values = {"reason": {"text": {"type": "plain_text_input", "value": "not during the freeze"}}}
    d = slack.control("/socket/deliver", {"kind": "view_submission", "user_id": "U0ALICE001",
                                          "view_id": posted["view_id"], "values": values})
    req = next_received(lambda r: getattr(r, "envelope_id", None) == d["envelope_id"])
    view = req.payload["view"]
    expect(req.payload["type"] == "view_submission" and view["private_metadata"] == "req-42", req.payload)
    expect(view["state"]["values"] == values and view["callback_id"] == "deny_reason", view)
    slack.wait("acks", {"envelope_id": d["envelope_id"]})


@check("un-acked events_api envelope is re-sent with retry_attempt/retry_reason")
def _():
    d = slack.control("/socket/deliver", {"kind": "event", "retry": [1.0],
                                          "event": {"type": "app_mention", "text": "ignore-first",
                                                    "user": "U0BOB00001", "channel": "C0APPROVE1"}})
    first = next_received(lambda r: getattr(r, "envelope_id", None) == d["envelope_id"])
    expect(first.retry_attempt == 0 and first.retry_reason == "", (first.retry_attempt, first.retry_reason))
    again = next_received(lambda r: getattr(r, "envelope_id", None) == d["envelope_id"], timeout=5)
    expect(again.retry_attempt == 1 and again.retry_reason == "timeout", (again.retry_attempt, again.retry_reason))
    ack = slack.wait("acks", {"envelope_id": d["envelope_id"]})[0]
    expect(ack["attempts_before_ack"] == 2 and ack["delay"] >= 1.0, ack)


@check("refresh_requested: SocketModeClient reconnects before the old socket closes")
def _():
    old = conn1["id"]
    slack.control("/socket/disconnect", {"reason": "refresh_requested", "grace": 5})
    new = slack.wait("connections", {"state": "open"}, timeout=10)
    new = [c for c in new if c["id"] != old]
    expect(new, "no new connection")
    conns = {c["id"]: c for c in slack.items("connections")}
    old_info = conns[old]
    expect(old_info["disconnects_sent"][0]["reason"] == "refresh_requested", old_info)
    expect(old_info["closed_at"] is None or new[0]["opened_at"] <= old_info["closed_at"],
           "the new socket was not opened before the old one closed")
    d = slack.control("/socket/deliver", {"kind": "slash_command", "user_id": "U0BOB00001", "text": "after"})
    ack = slack.wait("acks", {"envelope_id": d["envelope_id"]})[0]
    expect(ack["connection_id"] == new[0]["id"], f"acked on {ack['connection_id']}, want {new[0]['id']}")
    slack.wait("connections", {"id": old, "state": "closed"}, timeout=10)


@check("response_url: JSON post recorded; replace_original updates the message")
def _():
    d = slack.control("/socket/deliver", {"kind": "block_actions", "user_id": "U0ALICE001",
                                          "channel_id": posted["channel"], "message_ts": posted["ts"],
                                          "action_id": "approve"})
    slack.wait("acks", {"envelope_id": d["envelope_id"]})
    req = urllib.request.Request(d["response_url"], data=json.dumps(
        {"replace_original": True, "text": "Approved by alice"}).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        expect(json.load(r) == {"ok": True}, "response_url answer")
    msg = slack.items("messages", ts=posted["ts"])[0]
    expect(msg["text"] == "Approved by alice", msg["text"])
    expect(slack.items("responses")[-1]["body"]["replace_original"] is True, "not recorded")


sm.close()


# ---------------------------------------------------------------------------
# Socket Mode, raw: what the SDK does not show
# ---------------------------------------------------------------------------


def open_url():
    return WebClient(base_url=API).apps_connections_open(app_token=APP)["url"]


async def recv_json(ws, timeout=5):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


def run_async(coro):
    # Start from a clean slate: wait until earlier sockets are seen closed.
    deadline = time.monotonic() + 5
    while slack.items("connections", state="open") and time.monotonic() < deadline:
        time.sleep(0.05)
    return asyncio.run(coro)


@check("raw socket: hello shape and ping/pong")
def _():
    async def go():
        async with websockets.connect(open_url()) as ws:
            hello = await recv_json(ws)
            expect(hello["type"] == "hello" and hello["num_connections"] >= 1, hello)
            expect(hello["connection_info"]["app_id"] == "A0WRITTEST", hello)
            expect(hello["debug_info"]["host"] and hello["debug_info"]["approximate_connection_time"] > 0, hello)
            await asyncio.wait_for(await ws.ping(b"writ"), 2)

    run_async(go())


@check("raw socket: envelopes are spread round-robin across connections")
def _():
    async def go():
        a = await websockets.connect(open_url())
        b = await websockets.connect(open_url())
        await recv_json(a)
        await recv_json(b)
        ids = [slack.control("/socket/deliver", {"kind": "slash_command", "user_id": "U0BOB00001",
                                                 "text": str(i)})["connection_id"] for i in range(4)]
        got_a = [await recv_json(a) for _ in range(2)]
        got_b = [await recv_json(b) for _ in range(2)]
        for m in got_a + got_b:
            await (a if m in got_a else b).send(json.dumps({"envelope_id": m["envelope_id"]}))
        await a.close()
        await b.close()
        expect(len(set(ids)) == 2 and ids.count(ids[0]) == 2, ids)

    run_async(go())


@check("raw socket: warning keeps the old socket open for the grace period")
def _():
    async def go():
        async with websockets.connect(open_url()) as ws:
            await recv_json(ws)
            slack.control("/socket/disconnect", {"reason": "warning", "grace": 1.0})
            m = await recv_json(ws)
            expect(m == {"type": "disconnect", "reason": "warning", "debug_info": m["debug_info"]}, m)
            start = time.monotonic()
            await asyncio.wait_for(ws.wait_closed(), 5)
            expect(time.monotonic() - start >= 0.8, "closed before the grace period")
            expect(ws.close_code == 1000, f"close code {ws.close_code}")

    run_async(go())


@check("raw socket: too_many_websockets past max_connections")
def _():
    slack.control("/config", {"max_connections": 1})

    async def go():
        async with websockets.connect(open_url()) as first:
            await recv_json(first)
            async with websockets.connect(open_url()) as second:
                m = await recv_json(second)
                expect(m["type"] == "disconnect" and m["reason"] == "too_many_websockets", m)
                await asyncio.wait_for(second.wait_closed(), 5)

    try:
        run_async(go())
    finally:
        slack.control("/config", {"max_connections": 10})


@check("raw socket: link_disabled closes and apps.connections.open then fails")
def _():
    async def go():
        async with websockets.connect(open_url()) as ws:
            await recv_json(ws)
            slack.control("/socket/disconnect", {"reason": "link_disabled"})
            m = await recv_json(ws)
            expect(m["reason"] == "link_disabled", m)
            await asyncio.wait_for(ws.wait_closed(), 5)

    run_async(go())
    code = slack.control("/config")["link_disabled_error"]
    expect_slack_error(code, open_url)
    slack.control("/socket/enable", {})
    expect(open_url().startswith("ws://"), "not re-enabled")


@check("raw socket: tickets are single-use")
def _():
    url = open_url()

    async def go():
        async with websockets.connect(url) as ws:
            await recv_json(ws)
        try:
            await websockets.connect(url)
            raise AssertionError("a used ticket was accepted")
        except websockets.InvalidStatusCode as e:
            expect(e.status_code == 401, e.status_code)

    run_async(go())


# ---------------------------------------------------------------------------
# HTTP mode: signed requests verified by slack_sdk's SignatureVerifier
# ---------------------------------------------------------------------------

verifier = SignatureVerifier(SECRET)
app_requests = []


class App(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ok = verifier.is_valid(body=body, timestamp=self.headers.get("X-Slack-Request-Timestamp"),
                               signature=self.headers.get("X-Slack-Signature"))
        app_requests.append({"headers": dict(self.headers), "body": body.decode(), "valid": ok})
        if not ok:
            self.send_response(401)
            self.end_headers()
            return
        reply = json.dumps({"response_type": "ephemeral", "text": "received"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *a):
        pass


app_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), App)
threading.Thread(target=app_server.serve_forever, daemon=True).start()
APP_URL = f"http://127.0.0.1:{app_server.server_address[1]}/slack/events"


@check("HTTP mode: signed slash command verifies with SignatureVerifier")
def _():
    r = slack.control("/http/deliver", {"url": APP_URL, "kind": "slash_command", "user_id": "U0BOB00001",
                                        "command": "/writ", "text": "root db1"})
    expect(r["response"]["status"] == 200 and json.loads(r["response"]["body"])["text"] == "received", r["response"])
    got = app_requests[-1]
    expect(got["valid"], "signature rejected by slack_sdk")
    form = urllib.parse.parse_qs(got["body"])
    expect(form["command"] == ["/writ"] and form["text"] == ["root db1"] and form["trigger_id"], form)
    expect(got["headers"]["Content-Type"] == "application/x-www-form-urlencoded", got["headers"])


@check("HTTP mode: block_actions arrives as payload=<JSON>, signed")
def _():
    card = bot.chat_postMessage(channel="C0APPROVE1", text="another request", blocks=BUTTONS)
    r = slack.control("/http/deliver", {"url": APP_URL, "kind": "block_actions", "user_id": "U0ALICE001",
                                        "channel_id": card["channel"], "message_ts": card["ts"],
                                        "action_id": "approve"})
    expect(r["response"]["status"] == 200, r["response"])
    got = app_requests[-1]
    payload = json.loads(urllib.parse.parse_qs(got["body"])["payload"][0])
    expect(got["valid"] and payload["type"] == "block_actions" and payload["actions"][0]["value"] == "req-42",
           payload)


@check("HTTP mode: a bad signature or a stale timestamp is rejected by the SDK")
def _():
    r = slack.control("/http/deliver", {"url": APP_URL, "kind": "slash_command", "user_id": "U0BOB00001",
                                        "bad_signature": True})
    expect(r["response"]["status"] == 401 and not app_requests[-1]["valid"], r["response"])
    r = slack.control("/http/deliver", {"url": APP_URL, "kind": "slash_command", "user_id": "U0BOB00001",
                                        "timestamp": int(time.time()) - 600})
    expect(r["response"]["status"] == 401, "a 10-minute-old request was accepted")


app_server.shutdown()


# ---------------------------------------------------------------------------
# PagerDuty
# ---------------------------------------------------------------------------

pd.control("/seed", {
    "users": [{"id": "PALICE1", "name": "Alice Admin", "email": "alice@example.com"},
              {"id": "PALICE2", "name": "Alice Lookalike", "email": "alice@example.com.au"},
              {"id": "PBOB001", "name": "Bob", "email": "bob@example.com"}],
    "escalation_policies": [{"id": "PEPINFRA", "name": "Infra"}, {"id": "PEPOTHER", "name": "Other"}],
    "schedules": [{"id": "PSCHED1", "name": "Infra primary"}],
    "oncalls": [
        {"user": "PALICE1", "escalation_policy": "PEPINFRA", "schedule": "PSCHED1", "escalation_level": 1,
         "start": "2020-01-01T00:00:00Z", "end": "2090-01-01T00:00:00Z"},
        {"user": "PBOB001", "escalation_policy": "PEPINFRA", "schedule": None, "escalation_level": 2,
         "start": None, "end": None},
        {"user": "PBOB001", "escalation_policy": "PEPOTHER", "schedule": None, "escalation_level": 1,
         "start": None, "end": None},
        {"user": "PALICE1", "escalation_policy": "PEPINFRA", "schedule": "PSCHED1", "escalation_level": 1,
         "start": "2001-01-01T00:00:00Z", "end": "2002-01-01T00:00:00Z"},
    ],
})


def pd_get(path, token=PD_TOKEN, accept=PD_ACCEPT, params=None):
    url = pd.url + path + ("?" + urllib.parse.urlencode(params, doseq=True) if params else "")
    headers = {"Accept": accept} if accept else {}
    if token:
        headers["Authorization"] = f"Token token={token}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status, dict(r.headers), json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"null")


@check("PagerDuty: /abilities with Token auth; 401 with code 2006 otherwise")
def _():
    status, headers, body = pd_get("/abilities")
    expect(status == 200 and "teams" in body["abilities"], body)
    expect(headers.get("ratelimit-limit") == "960" and headers.get("ratelimit-remaining"), headers)
    for token in ("wrong", None):
        status, _, body = pd_get("/abilities", token=token)
        expect(status == 401 and body["error"]["code"] == 2006, (status, body))
    req = pd.items("requests", path="/abilities")[0]
    expect(req["accept_v2"] and req["authorization"] == f"Token token={PD_TOKEN}", req)


@check("PagerDuty: users?query= is a substring match; the client picks the exact e-mail")
def _():
    status, _, body = pd_get("/users", params={"query": "alice@example.com", "total": "true"})
    expect(status == 200 and body["total"] == 2 and len(body["users"]) == 2, body)
    exact = [u for u in body["users"] if u["email"].lower() == "alice@example.com"]
    expect([u["id"] for u in exact] == ["PALICE1"], exact)
    expect(body["users"][0]["type"] == "user" and body["more"] is False and body["limit"] == 25, body)
    status, _, body = pd_get("/users/PALICE1")
    expect(status == 200 and body["user"]["email"] == "alice@example.com", body)
    status, _, body = pd_get("/users/PNOBODY")
    expect(status == 404 and body["error"]["code"] == 2100, body)


@check("PagerDuty: /oncalls filters, time window, earliest, include[] and pagination")
def _():
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    status, _, body = pd_get("/oncalls", params={"user_ids[]": ["PALICE1"], "escalation_policy_ids[]": ["PEPINFRA"],
                                                 "since": now, "until": now})
    expect(status == 200 and len(body["oncalls"]) == 1 and body["total"] is None, body)
    entry = body["oncalls"][0]
    expect(entry["user"]["id"] == "PALICE1" and entry["user"]["type"] == "user_reference", entry)
    expect(entry["schedule"]["id"] == "PSCHED1" and entry["escalation_level"] == 1, entry)
    expect(entry["start"] == "2020-01-01T00:00:00Z" and entry["end"] == "2090-01-01T00:00:00Z", entry)
    # The whole history: both of Alice's shifts; earliest keeps one per (policy, level, user).
    params = {"user_ids[]": ["PALICE1"], "since": "2000-01-01T00:00:00Z", "until": now}
    expect(len(pd_get("/oncalls", params=params)[2]["oncalls"]) == 2, "history")
    expect(len(pd_get("/oncalls", params={**params, "earliest": "true"})[2]["oncalls"]) == 1, "earliest")
    # Pagination: walk with limit=1 until more is false.
    seen, offset = [], 0
    while True:
        _, _, page = pd_get("/oncalls", params={"escalation_policy_ids[]": ["PEPINFRA", "PEPOTHER"],
                                                "limit": 1, "offset": offset, "total": "true"})
        expect(page["limit"] == 1 and page["offset"] == offset and page["total"] == 3, page)
        seen += page["oncalls"]
        if not page["more"]:
            break
        offset += 1
    expect(len(seen) == 3, f"{len(seen)} on-calls across pages")
    # Permanent (schedule-less) on-calls have null start/end; include[]=users expands the user.
    _, _, body = pd_get("/oncalls", params={"schedule_ids[]": ["null"], "include[]": ["users"],
                                            "escalation_policy_ids[]": ["PEPINFRA"]})
    expect(len(body["oncalls"]) == 1 and body["oncalls"][0]["start"] is None
           and body["oncalls"][0]["user"]["email"] == "bob@example.com", body)
    status, _, body = pd_get("/oncalls", params={"since": now, "until": "2000-01-01T00:00:00Z"})
    expect(status == 400 and body["error"]["code"] == 2005, body)
    status, _, body = pd_get("/oncalls", params={"limit": 100, "offset": 9950})
    expect(status == 400, "offset+limit over 10000 must be a 400")


@check("PagerDuty: 429 with ratelimit-* headers, then OK; 503 while down")
def _():
    pd.control("/ratelimit", {"path": "/oncalls", "count": 1, "retry_after": 2})
    status, headers, body = pd_get("/oncalls")
    expect(status == 429 and body == {"error": {"message": "Rate Limit Exceeded", "code": 2020}}, body)
    expect(headers["ratelimit-remaining"] == "0" and headers["ratelimit-reset"] == "2", headers)
    expect(pd_get("/oncalls")[0] == 200, "still limited")
    pd.control("/down", {"mode": "503"})
    expect(pd_get("/abilities")[0] == 503, "not down")
    pd.control("/up", {})
    expect(pd_get("/abilities")[0] == 200, "not up")


# ---------------------------------------------------------------------------
# Shutdown: the state files
# ---------------------------------------------------------------------------


@check("SIGTERM stops both fakes and --state-file holds the recordings")
def _():
    slack.stop()
    pd.stop()
    with open(slack.state_file) as f:
        state = json.load(f)
    expect(any(c["method"] == "chat.postMessage" for c in state["calls"]) and state["acks"], "slack state")
    with open(pd.state_file) as f:
        expect(json.load(f)["requests"], "pagerduty state")


slack.stop()
pd.stop()
failed = [r for r in RESULTS if r[1]]
print(f"{len(RESULTS) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
