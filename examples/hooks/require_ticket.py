#!/usr/bin/env python3
"""Writ on_request hook: no access without a real ticket.

What it does
    Looks for a ticket id in the request's reason (or its `ticket` field), checks that the
    ticket exists with an HTTP GET to TICKET_URL, and then:
      - no ticket id in the reason          -> deny  ("name a ticket ...")
      - 404 Not Found                       -> deny  ("ticket ... does not exist")
      - 200 OK                              -> defer (the approvers still decide; the reason
                                               tells them the ticket exists)
      - anything else, or a network error   -> defer (never approves on an error)
    It never approves. To approve requests with a valid ticket instead, change
    `return writ_hook.defer(f"ticket {ticket} exists")` to `writ_hook.approve(...)`.

Settings (in the policy: the hook's `env:`)
    TICKET_URL   the URL of one ticket, with {ticket} where the id goes, e.g.
                 https://jira.example.com/rest/api/2/issue/{ticket}
                 (a missing TICKET_URL makes the hook fail: the request goes to people)
    TICKET_TOKEN optional; sent as "Authorization: Bearer <token>"

Install (as root)
    install -o root -g root -m 0755 require_ticket.py /etc/writ/hooks/
        hooks:
          on_request:
            path: /etc/writ/hooks/require_ticket.py
            env: { TICKET_URL: "https://jira.example.com/rest/api/2/issue/{ticket}" }

Change ONE line: TICKET_PATTERN below, to match your tracker's ticket ids.
"""
import os
import re
import urllib.parse

import writ_hook

TICKET_PATTERN = r"\b([A-Z][A-Z0-9]+-[0-9]+)\b"  # <- the one line to change (INC-123, OPS-7, ...)


def decide(req):
    text = f"{req.fields.get('ticket', '')} {req.reason}"
    match = re.search(TICKET_PATTERN, text)
    if not match:
        return writ_hook.deny("name a ticket in the reason (like INC-123) so the access can be traced")
    ticket = match.group(1)

    template = os.environ.get("TICKET_URL")
    if not template or "{ticket}" not in template:
        raise RuntimeError("set TICKET_URL (with {ticket} in it) in this hook's env: in the policy")
    url = template.replace("{ticket}", urllib.parse.quote(ticket, safe=""))
    headers = {}
    if os.environ.get("TICKET_TOKEN"):
        headers["Authorization"] = "Bearer " + os.environ["TICKET_TOKEN"]

    try:
        answer = writ_hook.http_get(url, timeout=3, headers=headers)
    except writ_hook.HTTPFailure:
        return writ_hook.defer(f"could not check ticket {ticket} (ticket service unreachable)")
    if answer.status == 200:
        return writ_hook.defer(f"ticket {ticket} exists")
    if answer.status == 404:
        return writ_hook.deny(f"ticket {ticket} does not exist")
    return writ_hook.defer(f"could not check ticket {ticket} (ticket service answered {answer.status})")


writ_hook.run(decide)
