"""Helpers for Writ policy hooks written in Python (protocol version 1).

writd runs a hook with one JSON document on stdin and reads one JSON decision from its stdout
(docs/hooks.md has the full protocol). This module does that part, so a hook is a few lines::

    import writ_hook

    def decide(req):
        if req.context.get("on_call"):
            return writ_hook.approve("on call in PagerDuty")
        return writ_hook.defer()

    writ_hook.run(decide)

For the notification events (on_approve, on_deny, on_expire) use ``run_notify`` instead.

Anything that goes wrong (an exception in your function, a malformed input, a bad decision)
ends the hook with exit status 1 and the error on stderr: writd then logs the failure and, for
on_request, leaves the request to the human approvers. A hook never approves by accident.

Standard library only (Python 3.11). writd puts the directory holding this file on PYTHONPATH.
"""

import json
import sys
import traceback
import urllib.error
import urllib.request

__all__ = [
    "PROTOCOL_VERSION",
    "REASON_LIMIT",
    "Decision",
    "Event",
    "HTTPFailure",
    "Response",
    "approve",
    "defer",
    "deny",
    "http_get",
    "http_post_json",
    "run",
    "run_notify",
]

#: The protocol version this module speaks.
PROTOCOL_VERSION = 1

#: The longest reason writd accepts, in characters.
REASON_LIMIT = 500


class Decision(dict):
    """An on_request hook's answer: build it with approve(), deny() or defer().

    It is a dict holding exactly the JSON that is printed to stdout.
    """


def _one_line(text):
    """``text`` as one line of at most REASON_LIMIT characters (control characters become
    spaces; too long a text is cut and ends with an ellipsis)."""
    text = "".join(" " if (ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F) else c for c in str(text))
    text = " ".join(text.split())
    if len(text) > REASON_LIMIT:
        text = text[: REASON_LIMIT - 1] + "\u2026"
    return text


def approve(reason, duration=None):
    """Grant the request now.

    reason: why (required; people see it and it is audited).
    duration: optional, in seconds: a shorter grant than requested. A longer one is cut to what
    was requested (a hook may only shorten).
    """
    reason = _one_line(reason)
    if not reason:
        raise ValueError("approve() needs a reason: people see it and it is audited")
    decision = Decision(decision="approve", reason=reason)
    if duration is not None:
        if isinstance(duration, bool) or not isinstance(duration, int) or duration <= 0:
            raise ValueError(f"approve(duration=...) must be a positive number of seconds, not {duration!r}")
        decision["duration"] = duration
    return decision


def deny(reason):
    """Refuse the request now. reason: why (required; the requester sees it)."""
    reason = _one_line(reason)
    if not reason:
        raise ValueError("deny() needs a reason: the requester sees it")
    return Decision(decision="deny", reason=reason)


def defer(reason="", add_approvers=()):
    """Leave the request to the flow's human approvers.

    reason: optional note for the approvers.
    add_approvers: optional user names who may approve this request too (at most 20).
    """
    decision = Decision(decision="defer", reason=_one_line(reason))
    if isinstance(add_approvers, str):
        add_approvers = [add_approvers]
    names = []
    for name in add_approvers:
        if not isinstance(name, str) or not name or any(c.isspace() or ord(c) < 0x20 for c in name):
            raise ValueError(f"defer(add_approvers=...) takes user names, not {name!r}")
        if name not in names:
            names.append(name)
    if names:
        decision["add_approvers"] = names
    return decision


class _Facts(dict):
    """A dict whose keys can also be read as attributes (``req.policy.flow``); a missing key reads
    as None."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            return None


def _facts(value):
    if isinstance(value, dict):
        return _Facts((k, _facts(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_facts(v) for v in value]
    return value


class Event:
    """The input document, with the request's fields at the top.

    Request fields: ``id``, ``kind`` ("grant" or "extend"), ``user``, ``uid``, ``groups``,
    ``capability`` ("sudo" or "login"), ``flow``, ``host``, ``runas``, ``commands`` (a list, or
    None when the request is not limited to commands), ``duration`` (seconds), ``reason``,
    ``fields`` (dict), ``created_at``.

    Also: ``event`` ("on_request", ...), ``context`` (dict of integration facts, e.g.
    ``context.get("on_call")``), ``now`` (UTC seconds), ``iso`` (the same as text), ``policy``
    (``.version``, ``.git_commit``, ``.flow``), ``decision`` (None for on_request; else
    ``.state``, ``.by``, ``.note``, ``.grant_id``, ``.expires_at``), and ``raw``, the whole
    document as parsed.
    """

    def __init__(self, document):
        if not isinstance(document, dict):
            raise ValueError("the input is not a JSON object")
        version = document.get("version")
        if version != PROTOCOL_VERSION:
            raise ValueError(f"input version {version!r} is not supported; this writ_hook.py speaks version 1")
        request = document.get("request")
        if not isinstance(request, dict):
            raise ValueError("the input has no request object")
        self.raw = document
        self.event = document.get("event")
        self.request = _facts(request)
        self.context = _facts(document.get("context") or {})
        time = document.get("time") or {}
        self.now = time.get("now")
        self.iso = time.get("iso")
        self.policy = _facts(document.get("policy") or {})
        self.decision = _facts(document["decision"]) if document.get("decision") else None

    def __getattr__(self, name):
        # Only called for names not set in __init__: the request's fields.
        request = self.__dict__.get("request")
        if request is not None and name in request:
            return request[name]
        raise AttributeError(f"the input has no {name!r} (see help(writ_hook.Event))")

    def __repr__(self):
        return f"Event({self.event!r}, request={self.request.get('id')!r}, user={self.request.get('user')!r})"


def _read_event():
    data = sys.stdin.buffer.read()
    try:
        document = json.loads(data)
    except ValueError as error:
        raise ValueError(f"the input is not JSON: {error}") from None
    return Event(document)


def _fail(error):
    """Reports an exception on stderr (traceback, then one summary line, which is what writd
    shows) and exits with status 1."""
    traceback.print_exception(error, file=sys.stderr)
    sys.stderr.write(f"writ hook failed: {type(error).__name__}: {error}\n")
    sys.stderr.flush()
    sys.exit(1)


def run(decide):
    """Runs an on_request hook: reads the input, calls ``decide(req)`` with an Event, prints the
    Decision it returns, exits 0. Any exception, or a return value that is not a Decision, exits 1
    (writd then leaves the request to people)."""
    try:
        event = _read_event()
        decision = decide(event)
        if not isinstance(decision, Decision):
            raise TypeError(
                f"decide() returned {decision!r}; return writ_hook.approve(...), writ_hook.deny(...) "
                "or writ_hook.defer(...)"
            )
        decision = Decision(decision)
        requested = event.request.get("duration")
        if "duration" in decision and isinstance(requested, int) and decision["duration"] > requested:
            decision["duration"] = requested
        decision["version"] = PROTOCOL_VERSION
        sys.stdout.write(json.dumps(decision) + "\n")
        sys.stdout.flush()
    except SystemExit:
        raise
    except BaseException as error:  # noqa: BLE001 - every failure must become exit status 1
        _fail(error)
    sys.exit(0)


def run_notify(notify):
    """Runs a notification hook (on_approve, on_deny, on_expire): reads the input, calls
    ``notify(event)`` with an Event and exits 0; its return value is ignored. An exception exits 1
    and writd logs it."""
    try:
        notify(_read_event())
        sys.stdout.flush()
    except SystemExit:
        raise
    except BaseException as error:  # noqa: BLE001
        _fail(error)
    sys.exit(0)


class HTTPFailure(Exception):
    """The HTTP request did not get an answer: DNS, connection, TLS or timeout."""


class Response:
    """An HTTP answer: ``status`` (int), ``body`` (bytes), ``text`` (str) and ``json()``."""

    def __init__(self, status, body, headers):
        self.status = status
        self.body = body
        self.headers = headers

    @property
    def text(self):
        """The body decoded as UTF-8 (invalid bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    def json(self):
        """The body parsed as JSON."""
        return json.loads(self.body)

    @property
    def ok(self):
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    def __repr__(self):
        return f"Response(status={self.status})"


_BODY_LIMIT = 1024 * 1024


def _send(request, timeout):
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return Response(answer.status, answer.read(_BODY_LIMIT), dict(answer.headers))
    except urllib.error.HTTPError as error:
        # 4xx and 5xx are answers too: the caller decides what a 404 means.
        body = error.read(_BODY_LIMIT) if error.fp is not None else b""
        return Response(error.code, body, dict(error.headers or {}))
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise HTTPFailure(f"{request.get_method()} {request.full_url}: {reason}") from None


def http_get(url, timeout=3.0, headers=None):
    """GET ``url``. Returns a Response for any HTTP status (a 404 is an answer); raises
    HTTPFailure when there is none (network error, timeout). Keep ``timeout`` (seconds) below
    the hook's own timeout."""
    request = urllib.request.Request(url, headers=dict(headers or {}), method="GET")
    return _send(request, timeout)


def http_post_json(url, data, timeout=3.0, headers=None):
    """POST ``data`` as JSON to ``url``. Returns a Response for any HTTP status; raises
    HTTPFailure when there is no answer."""
    body = json.dumps(data).encode("utf-8")
    all_headers = {"Content-Type": "application/json"}
    all_headers.update(headers or {})
    request = urllib.request.Request(url, data=body, headers=all_headers, method="POST")
    return _send(request, timeout)
