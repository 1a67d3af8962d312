#!/bin/sh
# Writ on_request hook in plain POSIX sh: the protocol needs no Python (docs/hooks.md).
#
# What it does
#   During business hours (Monday to Friday, OPEN:00 to CLOSE:00 UTC) it defers: the flow's
#   approvers decide as usual. Outside them it denies, telling the requester to page the on-call
#   instead. The time is the document's "time.now" (the time writd ran the hook), so replaying an
#   old input gives the same answer.
#
# Install (as root)
#   install -o root -g root -m 0755 business_hours.sh /etc/writ/hooks/
#       hooks:
#         on_request: { path: /etc/writ/hooks/business_hours.sh }
#
# Change ONE line: OPEN/CLOSE below (UTC hours).
OPEN=9 CLOSE=17 # <- the one line to change

set -eu

# stdin is one JSON object written by writd with sorted keys; "time" comes after "request" and
# "context", so the last "now": is time.now. (A real parser is safer: see the Python examples.)
input=$(cat)
now=$(printf '%s' "$input" | sed -n 's/.*"now":\([0-9][0-9]*\).*/\1/p')
case "$now" in
'' | *[!0-9]*)
    echo "no time.now in the input" >&2
    exit 1 # writd logs the failure; the request goes to people
    ;;
esac

hour=$(((now % 86400) / 3600))
weekday=$(((now / 86400 + 3) % 7 + 1)) # 1 = Monday ... 7 = Sunday (1970-01-01 was a Thursday)

if [ "$weekday" -le 5 ] && [ "$hour" -ge "$OPEN" ] && [ "$hour" -lt "$CLOSE" ]; then
    printf '{"decision": "defer", "reason": "business hours: an approver will look at it"}\n'
else
    printf '{"decision": "deny", "reason": "outside business hours (Mon-Fri %02d:00-%02d:00 UTC): page the on-call engineer instead"}\n' "$OPEN" "$CLOSE"
fi
