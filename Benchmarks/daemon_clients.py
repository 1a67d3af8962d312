"""Client side of Benchmarks/daemon.sh: drives writd, sudo and the writ CLI as test users and prints
figures. Runs as root inside daemon.sh's private mount namespace (test users, /run and /etc are
the namespace's own). Every figure line says how it was measured.

    python3 daemon_clients.py idle PID SECONDS
    python3 daemon_clients.py status PID USERS CONNECTIONS
    python3 daemon_clients.py approve REQUESTER APPROVER FLOW N
    python3 daemon_clients.py expiry USER...
    python3 daemon_clients.py sessions GRACE NOHUP_COUNT USER...
"""
import grp, json, math, os, pwd, selectors, socket, sqlite3, struct, subprocess, sys, threading, time

WRIT = os.environ.get("WRIT", "")
STORE = os.environ.get("STORE", "")
STATE = os.environ.get("STATE", "")
SOCK = "/run/writ/writd.sock"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def pct(values, p):
    """Nearest-rank percentile (p99 of 100 values is the 99th smallest)."""
    v = sorted(values)
    return v[max(0, math.ceil(p / 100 * len(v)) - 1)]


def ms(x):
    return f"{x * 1000:.1f} ms"


def summary(values):
    return (f"median {ms(pct(values, 50))}, p90 {ms(pct(values, 90))}, p99 {ms(pct(values, 99))}, "
            f"max {ms(max(values))} (min {ms(min(values))}, n={len(values)})")


def verdict(ok):
    return "MEETS target" if ok else "MISSES target"


def as_user(name):
    """subprocess arguments that run a child as NAME (uid, gid, supplementary groups), like
    setpriv --init-groups: no PAM session of its own."""
    pw = pwd.getpwnam(name)
    return dict(user=pw.pw_uid, group=pw.pw_gid, extra_groups=os.getgrouplist(name, pw.pw_gid),
                cwd=pw.pw_dir, env={"PATH": PATH, "HOME": pw.pw_dir, "USER": name, "LOGNAME": name})


def run(argv, user=None, **kw):
    extra = as_user(user) if user else {}
    return subprocess.run(argv, capture_output=True, text=True, **extra, **kw)


def sudo_ok(user):
    return run(["sudo", "-n", "/usr/bin/true"], user=user).returncode == 0


def store_query(sql, *args, db=STORE):
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return c.execute(sql, args).fetchall()
    finally:
        c.close()


def grant_add(user, seconds):
    # --store always: without it the CLI writes the default store itself when writd serves another.
    r = run([WRIT, "grant", "add", "--store", STORE, "--user", user, "--capability", "sudo", "--for", f"{seconds}s",
             "--reason", "daemon benchmark"])
    if r.returncode != 0:
        sys.exit(f"writ grant add failed: {r.stdout}{r.stderr}")
    gid = r.stdout.strip()
    (expires,), = store_query("SELECT expires_at FROM grants WHERE id = ?", gid)
    return gid, expires


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def kib(s):
    return int(s.split()[0])


def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def start_time(pid):
    """The process's start time, or None when it is gone (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def drain(pid, label=None):
    """Waits until writd has worked off what it was sent (its CPU time stops moving for 0.5 s);
    returns (seconds waited, CPU ticks it used meanwhile)."""
    pid = int(pid)
    t0 = time.monotonic()
    first = last = sum(cpu_ticks(pid))
    still = 0
    while still < 2 and time.monotonic() - t0 < 120:
        time.sleep(0.25)
        now = sum(cpu_ticks(pid))
        still = still + 1 if now == last else 0
        last = now
    waited = max(0.0, time.monotonic() - t0 - 0.5)
    if label:
        print(f"  (writd was still busy for {waited:.1f} s after {label}, {last - first} CPU ticks)")
    return waited, last - first


# --- 4. idle -------------------------------------------------------------------------------------

def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])  # utime, stime (fields 14 and 15 of stat(5))


def switches(pid):
    """Context switches per thread (name → count): each one a wake-up of that thread."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            st = proc_status(f"{pid}/task/{tid}")
        except FileNotFoundError:
            continue
        out[f"{st['Name']}/{tid}"] = int(st["voluntary_ctxt_switches"]) + int(st["nonvoluntary_ctxt_switches"])
    return out


def idle(pid, seconds):
    pid, seconds = int(pid), float(seconds)
    st = proc_status(pid)
    rss = kib(st["VmRSS"]) / 1024
    (active,), = store_query("SELECT count(*) FROM grants WHERE revoked_at IS NULL "
                             "AND not_before <= strftime('%s','now') AND expires_at > strftime('%s','now')")
    (watched,), = store_query("SELECT count(*) FROM watch WHERE ended_at IS NULL", db=STATE)
    print(f"writd RSS, idle, {active} active grants in the store ({watched} watched by writd): "
          f"VmRSS {rss:.1f} MiB (anon {kib(st['RssAnon']) / 1024:.1f}, file {kib(st['RssFile']) / 1024:.1f}), "
          f"peak since start VmHWM {kib(st['VmHWM']) / 1024:.1f} MiB, {st['Threads']} threads "
          f"— target < 30 MiB: ratio {rss / 30:.2f}, {verdict(rss < 30)}")
    hz = os.sysconf("SC_CLK_TCK")
    u0, s0 = cpu_ticks(pid)
    w0 = switches(pid)
    t0 = time.monotonic()
    time.sleep(seconds)
    u1, s1 = cpu_ticks(pid)
    w1 = switches(pid)
    dt = time.monotonic() - t0
    ticks = (u1 - u0) + (s1 - s0)
    woke = {t: w1[t] - w0.get(t, 0) for t in w1}
    total = sum(woke.values())
    per_thread = ", ".join(f"{t} {n}" for t, n in sorted(woke.items(), key=lambda x: -x[1]) if n)
    print(f"writd CPU over {dt:.0f} s idle (utime+stime from /proc/PID/stat, {hz} ticks/s): {ticks} ticks "
          f"(user {u1 - u0}, system {s1 - s0}) = {ticks / hz / dt * 100:.3f}% of one core "
          f"— target no busy polling (< 0.1%): {verdict(ticks / hz / dt < 0.001)}")
    print(f"writd wake-ups over the same {dt:.0f} s (context switches per thread, /proc/PID/task/*/status): "
          f"{total} = {total / dt:.2f}/s ({per_thread or 'none'})")


# --- 5. concurrent status clients ----------------------------------------------------------------

def frame(obj):
    body = json.dumps(obj).encode()
    return struct.pack(">I", len(body)) + body


def status_worker(user, n, go_r, ready_w, out_w, connect_first, retry):
    """Child process: become USER, open N connections (before the start signal when
    connect_first), then on the signal send one status request on each and time the replies.
    With retry, a "busy" refusal is retried like the CLI does (reconnect after 50–250 ms, up to
    40 times); the latency then runs from the first send to the answer."""
    import random
    pw = pwd.getpwnam(user)
    os.setgroups(os.getgrouplist(user, pw.pw_gid))
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)
    msg = frame({"v": 1, "op": "status"})
    results = []

    def open_one():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(SOCK)
        return s

    socks = []
    if connect_first:
        for _ in range(n):
            try:
                socks.append(open_one())
            except OSError as e:
                socks.append(e)
    os.write(ready_w, b"r")
    os.read(go_r, 1)
    sel = selectors.DefaultSelector()
    state = {}  # socket -> [client index, buffer]
    first = {}  # client index -> first send time
    attempts = [0] * n
    later = []  # (due, client index)

    def send(i, s=None):
        attempts[i] += 1
        try:
            s = s if s is not None else open_one()
            if isinstance(s, OSError):
                raise s
            first.setdefault(i, time.monotonic())
            s.sendall(msg)
            s.setblocking(False)
        except OSError as e:
            results.append((None, f"connect/send: {e}", attempts[i]))
            return
        state[s] = [i, b""]
        sel.register(s, selectors.EVENT_READ)

    for i in range(n):
        send(i, socks[i] if connect_first else None)
    deadline = time.monotonic() + 30
    while (state or later) and time.monotonic() < deadline:
        later.sort()
        while later and later[0][0] <= time.monotonic():
            send(later.pop(0)[1])
        timeout = max(0, later[0][0] - time.monotonic()) if later else 1
        for key, _ in sel.select(timeout=min(timeout, 1)):
            s = key.fileobj
            i, buf = state[s]
            try:
                chunk = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                chunk, buf = b"", b"ERR " + str(e).encode()
            buf += chunk
            state[s][1] = buf
            done = len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]
            if not (done or not chunk):
                continue
            now = time.monotonic()
            sel.unregister(s)
            s.close()
            del state[s]
            reply = json.loads(buf[4:]) if done else {}
            if reply.get("ok") is True:
                results.append((now - first[i], "", attempts[i]))
            elif retry and (reply.get("error") or {}).get("code") == "busy" and attempts[i] < 41:
                later.append((now + random.uniform(0.05, 0.25), i))
            else:
                err = reply.get("error") or {}
                results.append((None, f"{err.get('code')}: {err.get('message')}" if err else buf[:120].decode(errors="replace"), attempts[i]))
    for s, (i, _) in state.items():
        results.append((None, "no reply within 30 s", attempts[i]))
    for _, i in later:
        results.append((None, "still busy after 30 s", attempts[i]))
    data = json.dumps(results).encode()
    while data:
        data = data[os.write(out_w, data):]
    os.close(out_w)
    os._exit(0)


def status_round(pid, users, per, connect_first, retry=False):
    total = per * len(users)
    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()
    children = []
    for u in users:
        out_r, out_w = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(out_r)
            try:
                status_worker(u, per, go_r, ready_w, out_w, connect_first, retry)
            finally:
                os._exit(1)
        os.close(out_w)
        children.append((child, out_r))
    for _ in users:
        os.read(ready_r, 1)
    open_fds = len(os.listdir(f"/proc/{pid}/fd"))
    peak = [kib(proc_status(pid)["VmRSS"])]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], kib(proc_status(pid)["VmRSS"]))
            except (FileNotFoundError, ProcessLookupError):
                return
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    t0 = time.monotonic()
    os.write(go_w, b"g" * len(users))
    results = []
    for child, out_r in children:
        data = b""
        while chunk := os.read(out_r, 1 << 20):
            data += chunk
        os.waitpid(child, 0)
        results += json.loads(data) if data else [(None, "worker died", 0)]
    wall = time.monotonic() - t0
    stop.set()
    sampler.join()
    lat = [r[0] for r in results if r[0] is not None]
    errors = [r[1] for r in results if r[0] is None]
    tries = [r[2] for r in results]
    how = (f"{total} connections opened first ({open_fds} fds open in writd when all had connected), then a status "
           f"request on each at once" if connect_first else f"{total} clients each connect and send at once")
    print(f"  {how}; {len(users)} users × {per}" + (", \"busy\" retried as the CLI does" if retry else "") + ":")
    print(f"    answered {len(lat)}/{len(results)}; latency send→whole reply: "
          + (summary(lat) if lat else "none") + f"; all done in {ms(wall)}")
    if retry:
        print(f"    attempts per client: median {pct(tries, 50)}, p99 {pct(tries, 99)}, max {max(tries)}")
    if errors:
        counts = {}
        for e in errors:
            counts[e] = counts.get(e, 0) + 1
        print(f"    {len(errors)} not answered: " + "; ".join(f"{n}× {e[:110]}" for e, n in sorted(counts.items(), key=lambda x: -x[1])[:3]))
    return len(lat) == total, peak[0]


def status(pid, users, per, few_users):
    pid, per, users, few_users = int(pid), int(per), users.split(","), few_users.split(",")
    with open(f"/proc/{pid}/limits") as f:
        nofile = next(l.split()[3:5] for l in f if l.startswith("Max open files"))
    print(f"  writd's open-file limit here: soft {nofile[0]}, hard {nofile[1]}")
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM, so the peak below is this load's
    before = kib(proc_status(pid)["VmRSS"]) / 1024
    ok1, peak1 = status_round(pid, users, per, connect_first=True)
    ok2, peak2 = status_round(pid, users, per, connect_first=False)
    st = proc_status(pid)
    print(f"  writd RSS: {before:.1f} MiB before; peak during the load {max(peak1, peak2) / 1024:.1f} MiB "
          f"(sampled every 5 ms; VmHWM, reset before the load: {kib(st['VmHWM']) / 1024:.1f} MiB); "
          f"{kib(st['VmRSS']) / 1024:.1f} MiB after")
    print(f"  — target all answered: {verdict(ok1 and ok2)}")
    total = per * len(users)
    print(f"  the same {total} from only {len(few_users)} users (writd caps each uid's simultaneous connections and "
          f"refuses the rest as \"busy\"):")
    status_round(pid, few_users, total // len(few_users), connect_first=False)
    status_round(pid, few_users, total // len(few_users), connect_first=False, retry=True)


# --- 1. approve → sudo allowed -------------------------------------------------------------------

def read_frame(sock):
    buf = b""
    while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf += chunk
    return json.loads(buf[4:])


def wire_approver():
    """Runs as the approver: for each request id on stdin, one `approve` over the socket (no CLI
    process); prints the round trip in seconds and whether writd said ok."""
    for line in sys.stdin:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(SOCK)
        t = time.monotonic()
        s.sendall(frame({"v": 1, "op": "approve", "id": line.strip()}))
        reply = read_frame(s)
        dt = time.monotonic() - t
        s.close()
        print(dt, bool(reply and reply.get("ok")), flush=True)


def file_request(requester, flow):
    r = run([WRIT, "request", "sudo", "--flow", flow, "--no-wait", "--json"], user=requester)
    try:
        return json.loads(r.stdout)["id"]
    except (ValueError, KeyError):
        sys.exit(f"writ request failed: rc={r.returncode} {r.stdout}{r.stderr}")


def revoke_for(rid):
    (gid,), = store_query("SELECT id FROM grants WHERE request_id = ?", rid)
    rv = run([WRIT, "grant", "revoke", "--store", STORE, gid])
    if rv.returncode != 0:
        sys.exit(f"revoke failed: {rv.stdout}{rv.stderr}")


def approve(requesters, approver, flow, n):
    """REQUESTERS: a comma-separated list, taken in turn (writd lets one account file 30 requests
    at once, then one every 20 s)."""
    n = int(n)
    warmup = 3
    rotation = requesters.split(",")
    to_allowed, approve_alone, tries_before, stray = [], [], [], 0
    for i in range(n + warmup):
        requester = rotation[i % len(rotation)]
        if sudo_ok(requester):
            stray += 1  # a grant left over: would make the figure meaningless
        rid = file_request(requester, flow)
        done = {}
        start = time.monotonic()
        ap = subprocess.Popen([WRIT, "approve", rid], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              **as_user(approver))
        waiter = threading.Thread(target=lambda: (ap.wait(), done.setdefault("t", time.monotonic())))
        waiter.start()
        tries = 0
        while True:
            tries += 1
            if sudo_ok(requester):
                allowed = time.monotonic()
                break
            if time.monotonic() - start > 10:
                sys.exit(f"sudo still refused 10 s after writ approve {rid}: {ap.stderr.read() if ap.poll() is not None else ''}")
        waiter.join()
        if ap.returncode != 0:
            sys.exit(f"writ approve {rid} failed: {ap.stderr.read()}")
        if i >= warmup:
            to_allowed.append(allowed - start)
            approve_alone.append(done["t"] - start)
            tries_before.append(tries - 1)
        revoke_for(rid)
    # The same approvals sent straight over the socket by a resident process: writd's own share.
    helper = subprocess.Popen([sys.executable, __file__, "wire-approver"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, **as_user(approver))
    wire, first_sudo_ok = [], 0
    for i in range(wire_n := max(30, n // 3)):
        requester = rotation[i % len(rotation)]
        rid = file_request(requester, flow)
        helper.stdin.write(rid + "\n")
        helper.stdin.flush()
        dt, ok = helper.stdout.readline().split()
        if ok != "True":
            sys.exit(f"approve over the socket failed for {rid}")
        wire.append(float(dt))
        first_sudo_ok += sudo_ok(requester)
        revoke_for(rid)
    helper.stdin.close()
    helper.wait()
    p99 = pct(to_allowed, 99)
    print(f"approve → sudo allowed ({n} requests after {warmup} warm-up; clock from starting `writ approve` as "
          f"{approver} to the end of the first `sudo -n /usr/bin/true` as the requester ({len(rotation)} in turn) that "
          f"succeeds, sudo retried "
          f"back to back from the same instant; the grant is revoked after each):")
    print(f"  {summary(to_allowed)}")
    print(f"  — target p99 < 100 ms: ratio {p99 / 0.1:.2f}, {verdict(p99 < 0.1)}")
    print(f"  refused sudo runs before the first success: median {pct(tries_before, 50)}, max {max(tries_before)}")
    print(f"  the approve command alone (start to exit of `writ approve`): {summary(approve_alone)}")
    print(f"  writd's share — `approve` sent over the socket by a resident client as {approver} (no CLI process, no "
          f"sudo running meanwhile), send → reply: {summary(wire)}; the first sudo after the reply was allowed "
          f"in {first_sudo_ok}/{wire_n}")
    if stray:
        print(f"  WARNING: {stray} rounds found sudo already allowed before the request")


# --- 2. expiry → sudo denied ---------------------------------------------------------------------

def expiry(pid, *users):
    pid = int(pid)
    firsts, lastok, late_allowed, early_denied, runs = [], [], 0, 0, 0
    ticks0, t_start, busy = sum(cpu_ticks(pid)), time.monotonic(), 0.0
    for user in users:
        gid, exp = grant_add(user, 2)
        log = []
        while True:
            t0 = time.time()
            ok = sudo_ok(user)
            t1 = time.time()
            log.append((t0, t1, ok))
            if t0 > exp + 0.3:
                break
        runs += len(log)
        late_allowed += sum(1 for t0, t1, ok in log if ok and t0 >= exp)
        early_denied += sum(1 for t0, t1, ok in log if not ok and t1 < exp)
        denied = [(t0, t1) for t0, t1, ok in log if not ok]
        allowed = [t0 for t0, t1, ok in log if ok]
        firsts.append((denied[0][0] - exp, denied[0][1] - exp))
        lastok.append(exp - max(allowed))
        d0 = denied[0][0] - exp
        print(f"  {gid} (expires_at {exp}): last allowed sudo started {ms(exp - max(allowed))} before expires_at; "
              f"first refused one started {ms(abs(d0))} {'after' if d0 >= 0 else 'before (its check ran after)'} it "
              f"and had printed its refusal {ms(denied[0][1] - exp)} after it")
        busy += drain(pid)[0]  # the next grant add would queue behind this round's reports
    ticks = sum(cpu_ticks(pid)) - ticks0
    worst = max(f[1] for f in firsts)
    print(f"expiry → sudo denied ({len(users)} grants of 2 s, `sudo -n /usr/bin/true` back to back as the user "
          f"around expires_at, {runs} sudo runs in all):")
    print(f"  sudo runs that started at or after expires_at and were allowed: {late_allowed} "
          f"(refused before expires_at: {early_denied})")
    print(f"  first refusal completed {ms(min(f[1] for f in firsts))}–{ms(worst)} after expires_at "
          f"(one sudo's run time: the check itself falls on the second boundary)")
    print(f"  — target 0 s late: {verdict(late_allowed == 0 and early_denied == 0)}")
    hz = os.sysconf("SC_CLK_TCK")
    print(f"  writd's cost of the reports these sudo runs sent (sudo_writ.so reports accept, reject and exit): "
          f"{ticks} CPU ticks = {ticks / hz / runs * 1000:.1f} ms of CPU per sudo run; after each round writd needed "
          f"{busy / len(users):.1f} s on average to work off its queue")


# --- 3. expiry → session ended -------------------------------------------------------------------

def sessions(grace, nohup, *users):
    """Each user gets a short sudo grant, added through writd; once all are added, each user
    starts one long-running sudo under theirs. The grants end three per second, the first a few
    seconds after the last sudo started (the lead scales with how long writd took to add one)."""
    grace, nohup = float(grace), int(nohup)
    n_all = len(users)
    t = time.monotonic()
    grant_add(users[0], 1)  # times one add; ends before the sessions start
    t_add = time.monotonic() - t
    start = math.ceil(time.time() + 3 + 2.5 * n_all * t_add)
    grants = []
    for i, user in enumerate(users):
        grants.append(grant_add(user, max(3, start + i // 3 - math.floor(time.time()))))
    plan, procs = [], []
    for i, user in enumerate(users):
        hup_ignored = i >= n_all - nohup
        cmd = ["sudo", "-n"] + (["/usr/bin/nohup"] if hup_ignored else []) + ["/bin/sleep", "1000"]
        plan.append((user, grants[i][0], grants[i][1], hup_ignored, time.time()))
        procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, **as_user(user)))
    sudos_started = time.time()
    gone = [None] * len(procs)

    def wait(i):
        procs[i].wait()
        gone[i] = time.time()

    threads = [threading.Thread(target=wait, args=(i,)) for i in range(len(procs))]
    for t in threads:
        t.start()
    # When does writd know each session? (The sudo plugin reports it; writd records it.)
    tracked_at, commands = {}, set()
    while (len(tracked_at) < len(procs) or len(commands) < len(procs)) and time.time() < max(g[2] for g in plan):
        rows = store_query("SELECT pid FROM sessions WHERE closed_at IS NULL", db=STATE)
        now = time.time()
        for (pid,) in rows:
            tracked_at.setdefault(pid, now)
        commands |= {(c, start_time(c)) for p in procs for c in children(p.pid)}
        time.sleep(0.05)
    for t in threads:
        t.join(timeout=max(1, max(g[2] for g in plan) - time.time() + grace + 5))
    leftover = [p.pid for p in procs if p.poll() is None]
    # The commands under sudo (recorded by pid and start time while they ran): none may be left
    # once writd's last termination has had its time (a command can outlive its sudo by a moment).
    settle = time.time() + 1.5
    while (left := [pid for pid, t in commands if start_time(pid) == t]) and time.time() < settle:
        time.sleep(0.05)
    for pid in left + leftover:  # only our own processes, by pid
        os.kill(pid, 9)
    for p in procs:
        if p.poll() is None:
            p.wait()
    early = [i for i in range(len(plan)) if gone[i] is not None and gone[i] < plan[i][2]]
    normal = [gone[i] - plan[i][2] for i in range(len(plan))
              if not plan[i][3] and i not in early and procs[i].pid not in leftover]
    ignoring = [gone[i] - plan[i][2] for i in range(len(plan))
                if plan[i][3] and i not in early and procs[i].pid not in leftover]
    lags = [tracked_at[p.pid] - plan[i][4] for i, p in enumerate(procs) if p.pid in tracked_at]
    n = len(plan) - nohup
    spread = max(e for _, _, e, _, _ in plan) - min(e for _, _, e, _, _ in plan)
    first_end = min(e for _, _, e, _, _ in plan)
    print(f"expiry → session ended ({n} sessions, each `sudo -n /bin/sleep 1000` as its own user under its own short "
          f"sudo grant added through writd ({ms(t_add)} for one add); the sudos started {first_end - sudos_started:.1f} s "
          f"before the first grant ended, and the grants ended over {spread} s; writd --session-grace {grace:g}; clock "
          f"from expires_at to the moment sudo has exited, from waitpid in the parent):")
    if normal:
        p99 = pct(normal, 99)
        print(f"  {summary(normal)}")
        print(f"  — target p99 ≤ 2 s: ratio {p99 / 2:.2f}, {verdict(p99 <= 2 and len(normal) == n)}")
    if ignoring:
        print(f"  sessions that ignore SIGHUP (`sudo -n /usr/bin/nohup /bin/sleep 1000`, {len(ignoring)}): ended after "
              f"{', '.join(ms(x) for x in ignoring)} (grace {grace:g} s, then SIGSTOP and SIGKILL) — outside the target by design")
    if lags:
        print(f"  sudo start → session recorded by writd: median {ms(pct(lags, 50))}, max {ms(max(lags))} "
              f"({len(lags)}/{len(procs)} recorded before the last grant ended; "
              f"{sum(1 for i, p in enumerate(procs) if p.pid not in tracked_at or tracked_at[p.pid] >= plan[i][2])} "
              f"not recorded before their own grant ended)")
    if early or leftover:
        errs = "; ".join(sorted({procs[i].stderr.read().decode().strip()[:100] for i in early}))
        print(f"  PROBLEMS: {len(early)} sudo exited before its grant ended ({errs}); "
              f"{len(leftover)} still running {grace + 5:g} s after the last grant ended, never ended by writd (killed here)")
    print(f"  commands under sudo ({len(commands)} sleep processes) still running 1.5 s after the last sudo exited: {len(left)}")


if __name__ == "__main__":
    {"idle": idle, "status": status, "approve": approve, "expiry": expiry, "sessions": sessions,
     "wire-approver": wire_approver, "drain": drain}[sys.argv[1]](*sys.argv[2:])
