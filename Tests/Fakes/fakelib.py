"""fakelib.py - the plumbing shared by fake_slack.py and fake_pagerduty.py.

Standard library only. It provides:

* HTTPServer - a small HTTP/1.1 server on asyncio (keep-alive, Content-Length
  and chunked request bodies). A handler may hand an upgraded connection over
  to a WebSocket handler (fake_slack.py does, for Socket Mode), so the Web API,
  the WebSocket and the control API all share ONE port.
* Faults - "the service is down" switches used by both fakes: answer 503,
  reset every connection ("refuse"), never answer ("hang"), or answer late
  ("slow").
* RateLimits - "the next N calls get a 429" / "every call gets a 429" rules.
* Recorder - append-only lists of what happened (calls, acks, ...) with a
  long-poll `wait` so a test can block until something arrives instead of
  sleeping.
* run() - the launch contract shared by both fakes: `--port 0` picks a free
  port, `READY http://127.0.0.1:<port>` is printed once listening, SIGTERM or
  SIGINT stop the process and, with `--state-file`, dump the recordings.

Nothing here talks to the network beyond the loopback listener.
"""

import argparse
import asyncio
import email.utils
import http
import json
import secrets
import signal
import socket
import sys
import time
import urllib.parse

MAX_HEAD = 64 * 1024  # request line + headers
MAX_BODY = 16 * 1024 * 1024


# ---------------------------------------------------------------------------
# Requests and responses
# ---------------------------------------------------------------------------


class Request:
    """One parsed HTTP request. Header names are lower-cased."""

    def __init__(self, method, target, version, headers, body, peer):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # dict: lower-case name -> value (last wins)
        self.raw_headers = []  # list of (name, value) as sent
        self.body = body
        self.peer = peer
        self.received_at = time.time()
        parsed = urllib.parse.urlsplit(target)
        self.path = urllib.parse.unquote(parsed.path)
        self.query_string = parsed.query
        # keep_blank_values: Slack and PagerDuty both see "text=" as an empty value.
        self.query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)

    def q(self, name, default=None):
        """First value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else default

    def json(self):
        """The body parsed as JSON ({} when empty); raises ValueError if invalid."""
        if not self.body:
            return {}
        return json.loads(self.body.decode("utf-8"))

    def summary(self):
        """A JSON-friendly description, used by the recorders."""
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query_string,
            "headers": dict(self.raw_headers),
            "body": self.body.decode("utf-8", "replace"),
            "at": self.received_at,
        }


class Response:
    def __init__(self, status=200, body=b"", headers=None, content_type=None):
        self.status = status
        self.body = body if isinstance(body, bytes) else body.encode("utf-8")
        self.headers = list(headers or [])
        if content_type:
            self.headers.append(("Content-Type", content_type))

    @classmethod
    def json(cls, obj, status=200, headers=None, content_type="application/json; charset=utf-8"):
        return cls(status, json.dumps(obj, indent=None, sort_keys=False), headers, content_type)

    @classmethod
    def text(cls, text, status=200, headers=None):
        return cls(status, text, headers, "text/plain; charset=utf-8")

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


class Reset:
    """Handler result: drop the TCP connection without answering (RST)."""


class Hang:
    """Handler result: never answer; the connection is closed when `until` is set."""

    def __init__(self, until):
        self.until = until


class Upgraded:
    """Handler result: the handler took the connection over (WebSocket)."""


def control_error(message, status=400):
    return Response.json({"error": message}, status=status)


# ---------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------


class HTTPServer:
    """HTTP/1.1 on asyncio. `handler(request, reader, writer)` is awaited for
    every request and returns a Response, Reset, Hang or Upgraded."""

    def __init__(self, handler, host="127.0.0.1", port=0):
        self.handler = handler
        self.host = host
        self.port = port
        self.server = None
        self.open_connections = set()

    async def start(self):
        self.server = await asyncio.start_server(self._serve, self.host, self.port, limit=MAX_HEAD)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def _serve(self, reader, writer):
        peer = writer.get_extra_info("peername")
        self.open_connections.add(writer)
        try:
            while True:
                try:
                    request = await self._read_request(reader, peer)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return  # client went away between requests
                except _BadRequest as exc:
                    writer.write(_serialize(Response.text(str(exc) + "\n", 400), close=True))
                    await _drain(writer)
                    return
                if request is None:
                    return
                result = await self.handler(request, reader, writer)
                if isinstance(result, Upgraded):
                    return  # the WebSocket handler owns (and closed) the connection
                if isinstance(result, Reset):
                    _abort(writer)
                    return
                if isinstance(result, Hang):
                    await _wait_closed_or(reader, result.until)
                    _abort(writer)
                    return
                close = (
                    request.headers.get("connection", "").lower() == "close"
                    or request.version == "HTTP/1.0"
                )
                writer.write(_serialize(result, close=close, head_only=request.method == "HEAD"))
                await _drain(writer)
                if close:
                    return
        except Exception as exc:  # a bug in a fake must not kill the process
            print(f"fakelib: connection handler failed: {exc!r}", file=sys.stderr)
            _abort(writer)
        finally:
            self.open_connections.discard(writer)
            try:
                writer.close()
            except Exception:
                pass

    async def _read_request(self, reader, peer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                return None
            raise
        except asyncio.LimitOverrunError:
            raise _BadRequest("request head too large")
        lines = head[:-4].decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            raise _BadRequest("malformed request line")
        headers, raw = {}, []
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
            raw.append((name.strip(), value.strip()))
        body = b""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = await _read_chunked(reader)
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                raise _BadRequest("bad Content-Length")
            if length > MAX_BODY:
                raise _BadRequest("body too large")
            body = await reader.readexactly(length)
        request = Request(method, target, version, headers, body, peer)
        request.raw_headers = raw
        request.raw_head = head
        return request

    def close(self):
        if self.server:
            self.server.close()
        for writer in list(self.open_connections):
            _abort(writer)


class _BadRequest(Exception):
    pass


async def _read_chunked(reader):
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            # trailers, up to the empty line
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)
        if len(body) > MAX_BODY:
            raise _BadRequest("body too large")


def _serialize(response, close=False, head_only=False):
    try:
        phrase = http.HTTPStatus(response.status).phrase
    except ValueError:
        phrase = "Unknown"
    lines = [f"HTTP/1.1 {response.status} {phrase}"]
    names = {k.lower() for k, _ in response.headers}
    headers = list(response.headers)
    if "date" not in names:
        headers.append(("Date", email.utils.formatdate(usegmt=True)))
    headers.append(("Content-Length", str(len(response.body))))
    if close:
        headers.append(("Connection", "close"))
    lines += [f"{k}: {v}" for k, v in headers]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + response.body


async def _drain(writer):
    try:
        await writer.drain()
    except ConnectionError:
        pass


def _abort(writer):
    """Close with a TCP RST, the way a dead or firewalled server looks."""
    try:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()
    except Exception:
        pass


async def _wait_closed_or(reader, event):
    """Wait until the client closes the connection or `event` is set."""
    read = asyncio.ensure_future(reader.read(1 << 16))
    flag = asyncio.ensure_future(event.wait())
    try:
        while True:
            done, _ = await asyncio.wait({read, flag}, return_when=asyncio.FIRST_COMPLETED)
            if flag in done:
                return
            if read in done:
                if not read.result():
                    return  # EOF: the client gave up
                read = asyncio.ensure_future(reader.read(1 << 16))  # ignore pipelined bytes
    finally:
        for task in (read, flag):
            task.cancel()


# ---------------------------------------------------------------------------
# Fault injection: "the service is down"
# ---------------------------------------------------------------------------


class Faults:
    """One switch per scope (a fake decides what its scopes are, e.g. "web"
    and "socket" for Slack). Modes:

    503   - answer every request with an HTTP error (status and body settable)
    refuse- reset the TCP connection as soon as the request has been read
    hang  - read the request and never answer (hung requests are closed
            without an answer when the mode is cleared)
    slow  - answer normally, but only after `delay` seconds
    redirect - answer `status` (default 302) with `Location: <location><path>?<query>`,
            the way a hijacked DNS name or a misconfigured proxy would
    """

    MODES = ("503", "refuse", "hang", "slow", "redirect")

    def __init__(self, scopes):
        self.scopes = tuple(scopes)
        self.active = {}  # scope -> settings dict
        self.release = asyncio.Event()

    def set(self, body):
        mode = str(body.get("mode", "503"))
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {', '.join(self.MODES)}")
        scope = body.get("scope", "all")
        scopes = self.scopes if scope == "all" else (scope,)
        for s in scopes:
            if s not in self.scopes:
                raise ValueError(f"scope must be 'all' or one of {', '.join(self.scopes)}")
            self.active[s] = {
                "mode": mode,
                "status": int(body.get("status", 302 if mode == "redirect" else 503)),
                "body": body.get("body"),
                "content_type": body.get("content_type"),
                "delay": float(body.get("delay", 5.0)),
                "location": str(body.get("location", "")),
                "since": time.time(),
            }
        return self.describe()

    def clear(self, scope="all"):
        scopes = self.scopes if scope == "all" else (scope,)
        for s in scopes:
            self.active.pop(s, None)
        # Wake every hung request so its connection is closed.
        self.release.set()
        self.release = asyncio.Event()
        return self.describe()

    def describe(self):
        return {s: self.active.get(s) for s in self.scopes}

    async def apply(self, scope, default_body, req=None):
        """Return None to proceed normally, or a result to return instead.
        `default_body` is the Response a 503 answers with unless the test set
        its own body; `req` (the request) gives a redirect its path."""
        f = self.active.get(scope)
        if not f:
            return None
        mode = f["mode"]
        if mode == "slow":
            await asyncio.sleep(f["delay"])
            return None
        if mode == "refuse":
            return Reset()
        if mode == "hang":
            return Hang(self.release)
        if mode == "redirect":
            target = f["location"].rstrip("/")
            if req is not None:
                target += req.path + ("?" + req.query_string if req.query_string else "")
            return Response.text("Found\n", status=f["status"], headers=[("Location", target)])
        # "503" (or whatever status the test asked for)
        if f["body"] is not None:
            body = f["body"]
            if isinstance(body, (dict, list)):
                return Response.json(body, status=f["status"])
            return Response(f["status"], str(body), content_type=f["content_type"] or "text/plain; charset=utf-8")
        default_body.status = f["status"]
        return default_body


# ---------------------------------------------------------------------------
# Rate limits
# ---------------------------------------------------------------------------


class RateLimits:
    """Rules keyed by a name (a Slack method, a PagerDuty path, or "*" for
    everything). A rule with `count` N answers the next N matching calls with
    a 429, then lets calls through and disappears; without `count` every call
    is limited until the rule is cleared."""

    def __init__(self):
        self.rules = {}

    def set(self, body):
        key = body.get("method") or body.get("path") or "*"
        count = body.get("count")
        if count is not None and int(count) <= 0 or body.get("clear"):
            self.rules.pop(key, None)
            return self.describe()
        self.rules[key] = {
            "remaining": None if count is None else int(count),
            "retry_after": int(body.get("retry_after", 1)),
            "limited": 0,
        }
        return self.describe()

    def clear(self):
        self.rules.clear()
        return self.describe()

    def describe(self):
        return dict(self.rules)

    def check(self, key):
        """Return the rule's retry_after if this call must be limited, else None."""
        for k in (key, "*"):
            rule = self.rules.get(k)
            if not rule:
                continue
            if rule["remaining"] is not None:
                rule["remaining"] -= 1
                if rule["remaining"] <= 0:
                    del self.rules[k]
            rule["limited"] += 1
            return rule["retry_after"]
        return None


# ---------------------------------------------------------------------------
# Recordings and waiting for them
# ---------------------------------------------------------------------------


class Recorder:
    """Named append-only lists. Every item is a dict; `wait` long-polls until
    enough items match a filter."""

    def __init__(self, *names):
        self.lists = {n: [] for n in names}
        self._changed = asyncio.Event()

    def add(self, name, item):
        self.lists[name].append(item)
        self.changed()
        return item

    def changed(self):
        self._changed.set()
        self._changed = asyncio.Event()

    def reset(self):
        for items in self.lists.values():
            items.clear()
        self.changed()

    def select(self, name, where=None):
        items = self.lists.get(name)
        if items is None:
            raise KeyError(name)
        return [i for i in items if matches(i, where or {})]

    async def wait(self, name, where=None, count=1, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            found = self.select(name, where)
            if len(found) >= count:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            event = self._changed
            try:
                await asyncio.wait_for(event.wait(), left)
            except asyncio.TimeoutError:
                pass


def matches(item, where):
    """`where` maps dotted paths to wanted values: {"payload.command": "/writ"}."""
    for path, wanted in where.items():
        value = item
        for part in path.split("."):
            if isinstance(value, dict):
                value = value.get(part)
            else:
                value = None
                break
        if value != wanted and str(value) != str(wanted):
            return False
    return True


def query_where(request, reserved=("timeout", "count")):
    """Build a `where` filter from query parameters (GET /_fake/calls?method=x)."""
    return {k: v[0] for k, v in request.query.items() if k not in reserved}


async def wait_endpoint(recorder, request):
    """POST /_fake/wait {"collection", "where", "count", "timeout"} (or the same
    as GET query parameters). 200 with the matching items, 408 on timeout."""
    if request.method == "POST":
        body = request.json()
        name = body.get("collection")
        where = body.get("where") or {}
        count = int(body.get("count", 1))
        timeout = float(body.get("timeout", 5))
    else:
        name = request.q("collection")
        where = query_where(request, reserved=("collection", "timeout", "count"))
        count = int(request.q("count", 1))
        timeout = float(request.q("timeout", 5))
    if name not in recorder.lists:
        return control_error(f"unknown collection {name!r}; one of {sorted(recorder.lists)}")
    found = await recorder.wait(name, where, count, timeout)
    if found is None:
        return Response.json(
            {"error": "timeout", "collection": name, "where": where, "count": count,
             "found": recorder.select(name, where)}, status=408)
    return Response.json({"items": found})


# ---------------------------------------------------------------------------
# IDs
# ---------------------------------------------------------------------------

_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def make_id(prefix, length=10):
    """Slack- and PagerDuty-looking IDs: a letter, then upper-case alphanumerics."""
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length - len(prefix)))


# ---------------------------------------------------------------------------
# Launch contract
# ---------------------------------------------------------------------------


def base_arguments(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0 = pick a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--state-file", help="on exit, write everything recorded to this JSON file")
    parser.add_argument("--seed", help="JSON file with the same body as POST /_fake/seed, loaded at start")
    return parser


def run(app, args):
    """Start `app` (an object with .handle, .dump() and an optional .start(url)),
    print READY, serve until SIGTERM/SIGINT, then dump to --state-file."""

    async def main():
        server = HTTPServer(app.handle, args.host, args.port)
        port = await server.start()
        url = f"http://{args.host}:{port}"
        if hasattr(app, "start"):
            await app.start(url)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        app.stop_event = stop
        print(f"READY {url}", flush=True)
        await stop.wait()
        server.close()
        if args.state_file:
            with open(args.state_file, "w") as f:
                json.dump(app.dump(), f, indent=2, default=str)
                f.write("\n")

    asyncio.run(main())
