#!/bin/bash
# Checks the shared object loaded into sshd, sudo, su and login (pam_writ.so = sudo_writ.so):
# no Foundation, no Swift runtime libraries and no libstdc++ in NEEDED (Embedded Swift; SQLite
# linked in),
# -z nodelete, and only the PAM entry points and the two sudo plugin symbols exported.
set -euo pipefail
SO=${1:-.build/release/pam_writ.so}
fail=0
needed=$(readelf -d "$SO" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
echo "NEEDED: $needed"
for bad in libFoundation libFoundationEssentials libswift libstdc++ libdispatch libBlocksRuntime libgcc_s libsqlite3; do
    if [[ " $needed" == *" $bad"* ]]; then echo "FAIL: $SO needs $bad"; fail=1; fi
done
if ldd "$SO" | grep -Eq 'Foundation|libswift|/opt/swift'; then echo "FAIL: ldd shows Swift/Foundation libraries"; ldd "$SO"; fail=1; fi
# Nothing inside may read the invoking user's environment (sudo is setuid; SQLite calls getenv):
# the module's private getenv/environ (CShims/CWritHost/host.c) must satisfy every reference.
if nm -D --undefined-only "$SO" | grep -Eqw 'getenv|secure_getenv|environ|__environ'; then
    echo "FAIL: $SO reads the process environment through libc"; fail=1
fi
readelf -d "$SO" | grep -q 'Flags:.*NODELETE' || { echo "FAIL: not linked -z nodelete"; fail=1; }
exports=$(nm -D --defined-only "$SO" | awk '{print $3}' | sort | tr '\n' ' ')
want="pam_sm_acct_mgmt pam_sm_authenticate pam_sm_close_session pam_sm_open_session pam_sm_setcred writ_approval writ_audit "
echo "exports: $exports"
[ "$exports" = "$want" ] || { echo "FAIL: exported symbols differ from: $want"; fail=1; }
[ $fail = 0 ] && echo "linkage ok: $(du -h "$SO" | cut -f1) $SO"
exit $fail
