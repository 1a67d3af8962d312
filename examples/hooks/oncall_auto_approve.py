#!/usr/bin/env python3
"""Writ on_request hook: approve whoever is on call, leave everyone else to the approvers.

What it does
    Approves the request when the on-call integration says the requester is on call
    (context.on_call is true), or when the requester's user name is a line of ONCALL_FILE.
    Otherwise it defers: the flow's approvers decide as usual. It never denies.
    ONCALL_FILE is used only when it is owned by root and not writable by group or others
    (anyone who can edit it could approve themselves); otherwise it is ignored.

Install (as root)
    install -o root -g root -m 0755 oncall_auto_approve.py /etc/writ/hooks/
    and name it in the flow, e.g.:
        hooks:
          on_request: { path: /etc/writ/hooks/oncall_auto_approve.py, timeout: 5s }

Change ONE line: ONCALL_FILE below (one user name per line; # starts a comment).
The policy may also set it per flow: env: { WRIT_ONCALL_FILE: /path }.
"""
import os
import stat

import writ_hook

ONCALL_FILE = os.environ.get("WRIT_ONCALL_FILE", "/etc/writ/oncall.txt")  # <- the one line to change


def oncall_users(path):
    """The user names listed in `path`; empty when it is missing or others could have edited it."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return set()
    if info.st_uid != 0 or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or not stat.S_ISREG(info.st_mode):
        return set()
    with open(path, encoding="utf-8") as f:
        return {line.split("#", 1)[0].strip() for line in f} - {""}


def decide(req):
    if req.context.get("on_call") is True:
        return writ_hook.approve(f"{req.user} is on call")
    if req.user in oncall_users(ONCALL_FILE):
        return writ_hook.approve(f"{req.user} is listed in {ONCALL_FILE}")
    return writ_hook.defer()


writ_hook.run(decide)
