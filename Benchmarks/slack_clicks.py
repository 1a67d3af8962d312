"""Slack figures (issue 5), driven against the local fake Slack with real sudo; run by
Benchmarks/slack.sh inside the integration tests' sandbox, as root.

  slack_clicks.py clicks SLACK_URL REQUESTER APPROVER_UNIX APPROVER_SLACK_ID FLOW N
      click → grant enforceable: the clock starts when the fake Slack is asked to deliver the
      Approve click over Socket Mode and stops at the end of the first `sudo -n /usr/bin/true` as
      the requester that succeeds (retried back to back); baseline in the same run: the same
      with `writ approve` on the host instead of the click.
  slack_clicks.py refresh SLACK_URL N
      refresh_requested recovery: Slack asks writd's connection to refresh while N envelopes are
      being delivered; the time from the disconnect to the new connection's hello, and whether
      every envelope was acknowledged exactly once.
"""
import json, os, sys, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_clients import WRIT, as_user, file_request, pct, revoke_for, run, sudo_ok, summary  # noqa: E402


def call(base, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(base + path, data=data), timeout=30) as r:
        return json.loads(r.read())


def card_ts(base, rid, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for m in call(base, "/_fake/messages?channel=C0APPROVE1")["items"]:
            if not m.get("thread_ts") and rid in json.dumps(m.get("blocks")):
                return m["ts"]
        time.sleep(0.02)
    sys.exit(f"no card for {rid} after {timeout} s")


def until_sudo(requester, start):
    while not sudo_ok(requester):
        if time.monotonic() - start > 10:
            sys.exit("sudo still refused 10 s after the approval")
    return time.monotonic() - start


def clicks(base, requester, approver, slack_id, flow, n):
    n, warmup = int(n), 3
    by_click, by_cli = [], []
    for i in range(n + warmup):
        for way in ("click", "cli"):
            if sudo_ok(requester):
                sys.exit("a grant was left over: the figure would be meaningless")
            rid = file_request(requester, flow)
            ts = card_ts(base, rid)  # the card is out before anyone can click it
            start = time.monotonic()
            if way == "click":
                call(base, "/_fake/socket/deliver", {"kind": "block_actions", "user_id": slack_id,
                                                     "channel_id": "C0APPROVE1", "message_ts": ts,
                                                     "action_id": "writ_approve"})
            else:
                ap = run([WRIT, "approve", rid], user=approver)
                if ap.returncode != 0:
                    sys.exit(f"writ approve failed: {ap.stderr}")
            took = until_sudo(requester, start)
            if i >= warmup:
                (by_click if way == "click" else by_cli).append(took)
            revoke_for(rid)
    print(f"click → grant enforceable ({n} requests after {warmup} warm-up; from asking the fake Slack to deliver the "
          f"Approve click over Socket Mode to the first `sudo -n /usr/bin/true` as {requester} that succeeds):")
    print(f"  {summary(by_click)}")
    print("baseline, same run: `writ approve` on the host → sudo allowed:")
    print(f"  {summary(by_cli)}")
    print(f"ratio click / CLI: median ×{pct(by_click, 50) / pct(by_cli, 50):.2f}, p99 ×{pct(by_click, 99) / pct(by_cli, 99):.2f}"
          f"  (the CLI figure includes starting the `writ` process; the click goes through the fake Slack, the "
          f"WebSocket, the ack and a users.info call on the clicker)")
    print(f"target: click → grant p99 < 1 s: {'MEETS target' if pct(by_click, 99) < 1 else 'MISSES target'}")


def refresh(base, n):
    n = int(n)
    before = {c["id"] for c in call(base, "/_fake/connections")["items"]}
    sent = []
    disconnected_at = None
    for i in range(n):
        if i == n // 4:
            call(base, "/_fake/socket/disconnect", {"reason": "refresh_requested"})
            disconnected_at = time.time()
        r = call(base, "/_fake/socket/deliver", {"kind": "event", "event": {"type": "app_mention", "text": f"e{i}"},
                                                 "retry": False})
        sent.append(r["envelope_id"])
        time.sleep(0.01)
    time.sleep(1.5)
    conns = call(base, "/_fake/connections")["items"]
    new = [c for c in conns if c["id"] not in before]
    acks = call(base, "/_fake/acks")["items"]
    acked = [a["envelope_id"] for a in acks if a["envelope_id"] in sent]
    lost = [e for e in sent if e not in acked]
    dup = len(acked) - len(set(acked))
    opened = min((c["opened_at"] for c in new), default=None)
    if opened is None or disconnected_at is None:
        sys.exit("no new connection after refresh_requested")
    print(f"refresh_requested → new connection open: {(opened - disconnected_at) * 1000:.1f} ms "
          f"(make-before-break: the old one keeps working meanwhile); {n} envelopes delivered across the switch: "
          f"{len(set(acked))} acknowledged, {len(lost)} lost, {dup} acknowledged twice")
    print(f"target: no envelope lost: {'MEETS target' if not lost else 'MISSES target'}")


if __name__ == "__main__":
    {"clicks": clicks, "refresh": refresh}[sys.argv[1]](*sys.argv[2:])
