"""Talks writd's socket protocol directly, to test what the CLI never sends.

    python3 wire.py ping|garbage|oversized|version|slow|truncated|forged-report
"""
import json, socket, struct, sys, time

PATH = "/run/writ/writd.sock"

def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(15)
    s.connect(PATH)
    return s

def frame(obj):
    body = json.dumps(obj).encode()
    return struct.pack(">I", len(body)) + body

def reply(s):
    head = b""
    while len(head) < 4:
        chunk = s.recv(4 - len(head))
        if not chunk:
            return "closed"
        head += chunk
    (n,) = struct.unpack(">I", head)
    body = b""
    while len(body) < n:
        chunk = s.recv(n - len(body))
        if not chunk:
            break
        body += chunk
    return json.dumps(json.loads(body), indent=1)

case = sys.argv[1]
if case == "many":
    # Connections held open by one user: writd accepts a bounded number, refuses the rest, and
    # keeps serving others.
    held, refused = [], 0
    for _ in range(100):
        c = connect()
        try:
            c.sendall(frame({"v": 1, "op": "ping"}))
            r = reply(c)
        except (BrokenPipeError, ConnectionResetError):
            r = "closed"
        if '"busy"' in r or r == "closed":
            refused += 1
            c.close()
        else:
            held.append(c)
    print(f"held={len(held)} refused={refused}")
    sys.exit(0)
s = connect()
if case == "ping":
    s.sendall(frame({"v": 1, "op": "ping"}))
elif case == "garbage":
    s.sendall(struct.pack(">I", 11) + b"not json!!!")
elif case == "oversized":
    s.sendall(struct.pack(">I", 50_000_000))
elif case == "version":
    s.sendall(frame({"v": 99, "op": "ping"}))
elif case == "slow":
    s.sendall(struct.pack(">I", 100) + b"{")
elif case == "truncated":
    s.sendall(struct.pack(">I", 100) + b'{"v":1')
    s.shutdown(socket.SHUT_WR)
elif case == "flood":
    # Many requests sent without reading a reply: writd must cut the connection off rather than
    # buffer them all (and answer every one).
    try:
        s.sendall(frame({"v": 1, "op": "ping"}) * 20000)
    except (BrokenPipeError, ConnectionResetError):
        pass
    answered = 0
    try:
        while (r := reply(s)) != "closed":
            answered += 1
    except (ConnectionResetError, socket.timeout):
        pass
    print(f"cut off after {answered} replies" if answered < 20000 else "answered all 20000: not cut off")
    sys.exit(0)
elif case == "forged-report":
    s.sendall(frame({"v": 1, "op": "report", "event": "session_close", "user": "writt_bob"}))
print(reply(s))
