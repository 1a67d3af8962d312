#!/bin/bash
# Builds pam_writ.so (= sudo_writ.so) with Embedded Swift: WritCore, WritStore and WritModule
# compiled whole-module with -enable-experimental-feature Embedded, linked with the C shims and a
# static SQLite into one shared object that needs only libc and libpam. No Swift runtime, no
# metadata to relocate, no libstdc++: the module that loads into every sshd and sudo is small
# (see BENCHMARKS.md for what this saved).
#
#   scripts/build-module.sh [OUT_DIR]        (default .build/release; writes OUT_DIR/pam_writ.so)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/.build/release}
command -v swiftc >/dev/null || export PATH=/opt/swift/usr/bin:$PATH
# The toolchain's own clang and Embedded Swift libraries, wherever swiftc lives.
TOOLCHAIN=$(dirname "$(readlink -f "$(command -v swiftc)")")
CLANG=$TOOLCHAIN/clang
EMBEDDED_LIB=$TOOLCHAIN/../lib/swift/embedded/x86_64-unknown-linux-gnu
OBJ=$OUT/pam_writ.objects
mkdir -p "$OBJ"
cd "$ROOT"

CFLAGS=(-O2 -fPIC -fvisibility=hidden -fstack-protector-strong -D_FORTIFY_SOURCE=2 -Wall -Wextra)
"$CLANG" "${CFLAGS[@]}" -ICShims/CSQLite/include -c CShims/CSQLite/shim.c -o "$OBJ/csqlite.o"
"$CLANG" "${CFLAGS[@]}" -ICShims/CWritHost/include -c CShims/CWritHost/host.c -o "$OBJ/cwrithost.o"

SWIFTC=(swiftc -target x86_64-unknown-linux-gnu -enable-experimental-feature Embedded -wmo -parse-as-library
    -O -package-name writ -swift-version 6 -I "$OBJ" -I CShims/CLibc -I CShims/CSQLite/include
    -I CShims/CWritHost/include -Xcc -fPIC)
for module in WritCore WritStore WritModule; do
    "${SWIFTC[@]}" -module-name "$module" Sources/$module/*.swift \
        -emit-module -emit-module-path "$OBJ/$module.swiftmodule" -c -o "$OBJ/$module.o"
done

# -z nodelete: Linux-PAM dlcloses modules at pam_end, and a module that stays mapped is the safe
# choice for code sshd and sudo call back into. The version script exports only the PAM entry
# points and the two sudo plugin structs. SQLite is linked from Debian's libsqlite3.a through the
# linker script in CShims/link (loading libsqlite3.so costs every process 1,600 symbol lookups),
# its symbols hidden (--exclude-libs). DT_RELR and --gc-sections keep what a sudo maps small.
"$CLANG" -shared -fuse-ld=lld -o "$OUT/pam_writ.so.tmp" \
    "$OBJ/csqlite.o" "$OBJ/cwrithost.o" "$OBJ/WritCore.o" "$OBJ/WritStore.o" "$OBJ/WritModule.o" \
    "$EMBEDDED_LIB/libswiftUnicodeDataTables.a" \
    -L CShims/link -lsqlite3 -lpam -lm \
    -Wl,-z,nodelete -Wl,-z,now -Wl,-z,relro -Wl,-z,pack-relative-relocs -Wl,--gc-sections -Wl,--as-needed \
    -Wl,--exclude-libs,ALL -Wl,--version-script=CShims/writ_module.map
mv "$OUT/pam_writ.so.tmp" "$OUT/pam_writ.so"
echo "built $OUT/pam_writ.so ($(du -h "$OUT/pam_writ.so" | cut -f1))"
