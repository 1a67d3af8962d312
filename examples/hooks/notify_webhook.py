#!/usr/bin/env python3
"""Writ notification hook: tell a chat room or a ticket system when access is decided.

What it does
    For on_approve, on_deny and on_expire: POSTs the event as JSON to WEBHOOK_URL:
        {"text": "<one line for people>", "event": "on_approve", "request": {...},
         "decision": {...}, "time": {...}, "policy": {...}}
    The "text" key is what Slack and Mattermost incoming webhooks display. A non-2xx answer or a
    network error makes the hook fail (exit 1): writd logs it; nothing else changes.

Settings (in the policy: the hook's `env:`)
    WEBHOOK_URL  where to POST (the URL often is a secret: writd never logs it)

Install (as root)
    install -o root -g root -m 0755 notify_webhook.py /etc/writ/hooks/
        hooks:
          on_approve: { path: /etc/writ/hooks/notify_webhook.py, env: { WEBHOOK_URL: "https://..." } }
          on_deny:    { path: /etc/writ/hooks/notify_webhook.py, env: { WEBHOOK_URL: "https://..." } }
          on_expire:  { path: /etc/writ/hooks/notify_webhook.py, env: { WEBHOOK_URL: "https://..." } }

Change ONE line: MESSAGE below, the text people see ({user}, {host}, {flow}, {state}, {by},
{reason}, {duration} and {id} are filled in).
"""
import os

import writ_hook

MESSAGE = "writ: {user}'s request {id} for {flow} on {host} was {state} by {by} ({reason})"  # <- the one line to change


def notify(event):
    url = os.environ.get("WEBHOOK_URL")
    if not url:
        raise RuntimeError("set WEBHOOK_URL in this hook's env: in the policy")
    decision = event.decision or {}
    text = MESSAGE.format(
        user=event.user,
        id=event.id,
        flow=event.flow,
        host=event.host,
        reason=event.reason,
        duration=event.duration,
        state=decision.get("state") or event.event.removeprefix("on_"),
        by=decision.get("by") or "writd",
    )
    raw = event.raw
    body = {
        "text": text,
        "event": event.event,
        "request": raw.get("request"),
        "decision": raw.get("decision"),
        "time": raw.get("time"),
        "policy": raw.get("policy"),
    }
    answer = writ_hook.http_post_json(url, body, timeout=3)
    if not answer.ok:
        raise RuntimeError(f"the webhook answered {answer.status}")


writ_hook.run_notify(notify)
