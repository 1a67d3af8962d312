"""Client side of Benchmarks/flood.sh: one account (or address) floods writd while another user
measures what it costs them. Runs as root inside flood.sh's private mount namespace; children
become the test users. Every figure line says how it was measured.

    python3 flood_clients.py victim USER SECONDS            # status every 20 ms: latency summary
    python3 flood_clients.py refusals USER SECONDS CONNS    # refused requests, 32 x 480-byte commands
    python3 flood_clients.py audit-reads USER SECONDS CONNS # writ audit over the socket, in a loop
    python3 flood_clients.py prefill-audit MIB              # sudo.accept reports (4 KiB commands) as root
    python3 flood_clients.py hold USERS PER SECONDS         # idle connections: PER from each user
    python3 flood_clients.py root-check                     # root's ping and a module report
"""
import os, pwd, socket, struct, sys, threading, time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_clients import frame, pct, read_frame, SOCK  # noqa: E402


def become(user):
    pw = pwd.getpwnam(user)
    os.setgroups(os.getgrouplist(user, pw.pw_gid))
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)


def call(obj, timeout=30):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(SOCK)
        s.sendall(frame(obj))
        return read_frame(s)
    finally:
        s.close()


def victim(user, seconds):
    become(user)
    seconds = float(seconds)
    lat, errors = [], Counter()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.monotonic()
        try:
            r = call({"v": 1, "op": "status"})
            if not (r and r.get("ok")):
                errors[(r or {}).get("error", {}).get("code", "no reply")] += 1
        except OSError as e:
            errors[type(e).__name__] += 1
        lat.append(time.monotonic() - t)
        time.sleep(0.02)
    print(f"{user}'s status (one connection each, every 20 ms, {seconds:.0f} s): "
          f"median {pct(lat, 50)*1000:.1f} ms, p99 {pct(lat, 99)*1000:.1f} ms, max {max(lat)*1000:.1f} ms "
          f"(n={len(lat)}){'; errors: ' + dict(errors).__repr__() if errors else ''}", flush=True)
    return pct(lat, 99)


def loop(user, seconds, conns, message):
    """CONNS threads as USER, each sending MESSAGE on a fresh connection in a loop for SECONDS."""
    become(user)
    end = time.monotonic() + float(seconds)
    codes = Counter()
    lock = threading.Lock()

    def worker():
        while time.monotonic() < end:
            try:
                r = call(message)
                code = "ok" if r and r.get("ok") else (r or {}).get("error", {}).get("code", "no reply")
            except OSError as e:
                code = type(e).__name__
            with lock:
                codes[code] += 1

    threads = [threading.Thread(target=worker) for _ in range(int(conns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = sum(codes.values())
    print(f"{user} sent {total} in {float(seconds):.0f} s over {conns} connections ({total / float(seconds):.0f}/s): "
          f"{dict(codes)}", flush=True)


def refusals(user, seconds, conns):
    commands = ["/usr/bin/true " + "a" * (470 + i) for i in range(32)]
    loop(user, seconds, conns, {"v": 1, "op": "request", "capability": "sudo", "commands": commands,
                                "reason": "INC-1 flood", "duration": 600})


def audit_reads(user, seconds, conns):
    loop(user, seconds, conns, {"v": 1, "op": "audit"})


def prefill_audit(mib):
    """As root (a module's report): sudo.accept records with a 4 KiB command, until the log has
    grown by MIB MiB."""
    audit = os.environ["AUDIT"]
    target = os.path.getsize(audit) + int(mib) * 1024 * 1024
    command = "/usr/bin/true " + "p" * 4000
    lock = threading.Lock()
    sent = [0]

    def worker():
        while os.path.getsize(audit) < target:
            call({"v": 1, "op": "report", "event": "sudo_accept", "user": "writt_dave", "service": "sudo",
                  "commands": [command]})
            with lock:
                sent[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"audit log filled to {os.path.getsize(audit) / 1048576:.1f} MiB ({sent[0]} reports as root)", flush=True)


def hold(users, per, seconds):
    """Each user holds PER idle connections (the per-uid share) for SECONDS; prints how many were
    accepted."""
    users = users.split(",")
    r, w = os.pipe()
    pids = []
    for u in users:
        pid = os.fork()
        if pid == 0:
            os.close(r)
            become(u)
            held = []
            for _ in range(int(per)):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(5)
                try:
                    s.connect(SOCK)
                    held.append(s)
                except OSError:
                    s.close()
            # Kept: still open a second later (writd answers a refused one with an error and closes it).
            time.sleep(1)
            kept = 0
            for s in held:
                s.setblocking(False)
                try:
                    kept += 0 if s.recv(4096) is not None else 1
                except BlockingIOError:
                    kept += 1
                except OSError:
                    pass
            os.write(w, b"%d\n" % kept)
            time.sleep(float(seconds))
            os._exit(0)
        pids.append(pid)
    os.close(w)
    with os.fdopen(r) as f:
        counts = [int(x) for x in f.read().split()]
    print(f"{len(users)} accounts tried {len(users) * int(per)} idle connections ({per} each); writd kept {sum(counts)} "
          f"open, refused the rest", flush=True)
    for pid in pids:
        os.waitpid(pid, 0)


def root_check():
    t = time.monotonic()
    ping = call({"v": 1, "op": "ping"})
    dt = time.monotonic() - t
    report = call({"v": 1, "op": "report", "event": "session_open", "user": "writt_dave", "service": "flood-check"})
    print(f"root: ping {'answered' if ping and ping.get('ok') else 'REFUSED: ' + repr(ping)} in {dt * 1000:.1f} ms; "
          f"a module report {'accepted' if report and report.get('ok') else 'REFUSED: ' + repr(report)}", flush=True)


if __name__ == "__main__":
    {"victim": victim, "refusals": refusals, "audit-reads": audit_reads, "prefill-audit": prefill_audit,
     "hold": hold, "root-check": root_check}[sys.argv[1]](*sys.argv[2:])
