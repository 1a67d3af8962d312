#!/usr/bin/env python3
"""slack_signature.py - Slack's v0 request signing, both directions.

Slack signs every HTTP request it sends to an app (slash commands,
interactivity, Events API) like this:

    basestring = "v0:" + X-Slack-Request-Timestamp + ":" + <raw request body>
    X-Slack-Signature = "v0=" + hex(HMAC-SHA256(key=signing secret, msg=basestring))

and apps must reject a request whose timestamp is more than five minutes
away from their clock (replay protection). The body is the raw bytes as sent,
never a re-encoding of parsed fields.

`python3 slack_signature.py` runs the self-test below against the worked
example Slack publishes in "Verifying requests from Slack"
(docs.slack.dev/authentication/verifying-requests-from-slack). Standard
library only.
"""

import hashlib
import hmac
import sys
import time

VERSION = "v0"
MAX_SKEW_SECONDS = 60 * 5  # Slack: reject requests older than five minutes

# Slack's published example: signing secret, X-Slack-Request-Timestamp, the raw
# body of a slash-command request, and the X-Slack-Signature Slack computed.
DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
DOC_TIMESTAMP = "1531420618"
DOC_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
    "&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
    "&command=%2Fwebhook-collect&text="
    "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def _bytes(value):
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def sign(signing_secret, timestamp, body):
    """The X-Slack-Signature value for `body` (bytes or str) sent at `timestamp`."""
    basestring = b"%s:%s:%s" % (VERSION.encode(), _bytes(timestamp), _bytes(body))
    digest = hmac.new(_bytes(signing_secret), basestring, hashlib.sha256).hexdigest()
    return f"{VERSION}={digest}"


def verify(signing_secret, timestamp, body, signature, now=None, max_skew=MAX_SKEW_SECONDS):
    """True when `signature` is Slack's for this body and the timestamp is fresh.
    `now` (seconds) defaults to the current time; pass max_skew=None to skip the
    freshness check (only for published test vectors)."""
    if signature is None or timestamp is None:
        return False
    try:
        ts = int(_bytes(timestamp).decode())
    except ValueError:
        return False
    if max_skew is not None:
        now = time.time() if now is None else now
        if abs(now - ts) > max_skew:
            return False
    expected = sign(signing_secret, timestamp, body)
    # Constant-time comparison, as Slack recommends.
    return hmac.compare_digest(expected.encode(), _bytes(signature))


def self_test():
    """Return a list of failure messages (empty when everything holds)."""
    failures = []
    got = sign(DOC_SECRET, DOC_TIMESTAMP, DOC_BODY)
    if got != DOC_SIGNATURE:
        failures.append(f"published vector: sign() = {got}, Slack says {DOC_SIGNATURE}")
    if not verify(DOC_SECRET, DOC_TIMESTAMP, DOC_BODY, DOC_SIGNATURE, max_skew=None):
        failures.append("published vector: verify() rejected Slack's own signature")
    if not verify(DOC_SECRET, DOC_TIMESTAMP, DOC_BODY, DOC_SIGNATURE, now=int(DOC_TIMESTAMP) + 299):
        failures.append("verify() rejected a request 299 s old")
    if verify(DOC_SECRET, DOC_TIMESTAMP, DOC_BODY, DOC_SIGNATURE, now=int(DOC_TIMESTAMP) + 301):
        failures.append("verify() accepted a request 301 s old (replay window is 5 minutes)")
    if verify(DOC_SECRET, DOC_TIMESTAMP, DOC_BODY, DOC_SIGNATURE, now=int(DOC_TIMESTAMP) - 301):
        failures.append("verify() accepted a request 301 s in the future")
    if verify(DOC_SECRET, DOC_TIMESTAMP, DOC_BODY + "x", DOC_SIGNATURE, max_skew=None):
        failures.append("verify() accepted a tampered body")
    if verify(DOC_SECRET + "x", DOC_TIMESTAMP, DOC_BODY, DOC_SIGNATURE, max_skew=None):
        failures.append("verify() accepted the wrong secret")
    if verify(DOC_SECRET, "1531420619", DOC_BODY, DOC_SIGNATURE, max_skew=None):
        failures.append("verify() accepted a different timestamp")
    if verify(DOC_SECRET, "not-a-number", DOC_BODY, DOC_SIGNATURE, max_skew=None):
        failures.append("verify() accepted a non-numeric timestamp")
    return failures


if __name__ == "__main__":
    problems = self_test()
    for p in problems:
        print("FAIL", p)
    if not problems:
        print("PASS slack_signature self-test (Slack's published vector and the 5-minute window)")
    sys.exit(1 if problems else 0)
