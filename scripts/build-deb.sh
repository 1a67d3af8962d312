#!/bin/bash
# Builds the Debian package writ_<version>_<arch>.deb from a release build, with dpkg-deb and the
# hand-written files in dist/deb/writ/ (maintainer scripts, pam-auth-update profile, logrotate,
# copyright) and docs/man/. No debhelper: there is no Debian source package to build from.
#
#   scripts/build-deb.sh [BUILD_DIR] [OUT_DIR]       defaults: .build/release .build/deb
#
# BUILD_DIR holds writ, writd and pam_writ.so (swift build -c release, then
# scripts/build-module.sh). The version is what `writ --version` prints, with the Debian revision
# DEB_REVISION (default 1); DEB_COMPRESSION is dpkg-deb's -Z (default xz). writ(1) and its
# subcommands' pages come from swift-argument-parser's generate-manual, built once into
# .build-manual. Needs dpkg-dev, binutils and Swift. Prints the .deb's path.
#
# One stage_* function per binary package: a writ-server package is one more function and one
# more directory under dist/deb/.
set -euo pipefail
cd "$(dirname "$0")/.."
umask 022
BUILD=$(realpath "${1:-.build/release}")
OUT=$(realpath -m "${2:-.build/deb}")
command -v swift >/dev/null || export PATH=/opt/swift/usr/bin:$PATH

for f in writ writd pam_writ.so; do
    [ -f "$BUILD/$f" ] || { echo "build-deb.sh: $BUILD/$f is missing: build first (scripts/test.sh's build step)" >&2; exit 1; }
done
UPSTREAM=$("$BUILD/writ" --version)
[[ $UPSTREAM =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || { echo "build-deb.sh: writ --version printed '$UPSTREAM', not a version" >&2; exit 1; }
[ "$("$BUILD/writd" --version)" = "$UPSTREAM" ] || { echo "build-deb.sh: writd --version differs from writ's $UPSTREAM" >&2; exit 1; }
VERSION=$UPSTREAM-${DEB_REVISION:-1}
ARCH=$(dpkg --print-architecture)
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH) || { echo "build-deb.sh: needs dpkg-dev (apt install dpkg-dev)" >&2; exit 1; }
# Dates (changelog, man pages, file times) from the last commit: the same tree builds the same .deb.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"

# swift-argument-parser's man page generator, at the version writ is built with. Its own scratch
# path: it never touches the main build.
generate_manual() {
    local tool=.build-manual/release/generate-manual
    if [ ! -x "$tool" ]; then
        echo "== building generate-manual (once, into .build-manual)" >&2
        swift build -c release --package-path .build/checkouts/swift-argument-parser \
            --product generate-manual --scratch-path .build-manual >&2
    fi
    "$tool" "$@"
}

# The files every package has: copyright, changelog, gzipped man pages and docs, md5sums, conffiles.
finish_package() {
    local name=$1 root=$2 dist=dist/deb/$1
    local doc=$root/usr/share/doc/$name maintainer
    maintainer=$(sed -n 's/^Maintainer: //p' "$dist/control")
    install -d "$doc"
    install -m 0644 "$dist/copyright" "$doc/copyright"
    printf '%s (%s) bookworm; urgency=medium\n\n  * Built from the Writ repository%s by scripts/build-deb.sh.\n\n -- %s  %s\n' \
        "$name" "$VERSION" "$(git rev-parse --short HEAD 2>/dev/null | sed 's/^/ at commit /')" \
        "$maintainer" "$(date -R -u -d "@$SOURCE_DATE_EPOCH")" | gzip -9n >"$doc/changelog.Debian.gz"
    # Debian compresses man pages, and docs over 4 KiB outside examples/ (as dh_compress does).
    find "$root/usr/share/man" -type f -exec gzip -9n {} +
    find "$doc" -type f -size +4k ! -path '*/examples/*' ! -name '*.gz' ! -name copyright -exec gzip -9n {} +
    install -d -m 0755 "$root/DEBIAN"
    for script in preinst postinst prerm postrm; do
        [ ! -f "$dist/$script" ] || install -m 0755 "$dist/$script" "$root/DEBIAN/$script"
    done
    if [ -d "$root/etc" ]; then find "$root/etc" -type f -printf '/etc/%P\n' | sort >"$root/DEBIAN/conffiles"; fi
    (cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
    # Depends on the shared libraries the ELF files need, as dpkg-shlibdeps finds them (it wants a
    # debian/ directory around the staged tree).
    local shlibs built_using elf=() f
    mkdir -p "$WORK/debian" && printf 'Source: writ\n\nPackage: %s\nArchitecture: any\n' "$name" >"$WORK/debian/control"
    while IFS= read -r -d '' f; do
        [ "$(head -c 4 "$WORK/$f" | tr -d '\0')" != $'\177ELF' ] || elf+=("-e$f")
    done < <(cd "$WORK" && find "debian/$name" -type f -print0)
    shlibs=$(cd "$WORK" && dpkg-shlibdeps -O "${elf[@]}" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
    [ -n "$shlibs" ] || { echo "build-deb.sh: dpkg-shlibdeps found no library dependencies" >&2; exit 1; }
    # SQLite is linked into pam_writ.so from Debian's libsqlite3-dev: record which one.
    built_using=$(dpkg-query -W -f='${source:Package} (= ${source:Version})' libsqlite3-dev)
    sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SHLIBS_DEPENDS@/$shlibs/" \
        -e "s/@BUILT_USING@/$built_using/" \
        -e "s/@INSTALLED_SIZE@/$(du -sk --exclude=DEBIAN "$root" | cut -f1)/" "$dist/control" >"$root/DEBIAN/control"
    find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    dpkg-deb --root-owner-group -Z"${DEB_COMPRESSION:-xz}" --build "$root" "$OUT/${name}_${VERSION}_${ARCH}.deb" >/dev/null
    echo "$OUT/${name}_${VERSION}_${ARCH}.deb"
}

stage_writ() {
    local root=$1 dist=dist/deb/writ page
    local pamdir=$root/usr/lib/$MULTIARCH/security
    install -d "$root/usr/bin" "$root/usr/sbin" "$pamdir" "$root/usr/libexec/sudo" \
        "$root/usr/lib/systemd/system" "$root/usr/lib/writ/python" "$root/etc/writ" "$root/etc/logrotate.d" \
        "$root/usr/share/pam-configs" "$root/usr/share/man/man1" "$root/usr/share/man/man5" "$root/usr/share/man/man8" \
        "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
        "$root/usr/share/fish/vendor_completions.d" "$root/usr/share/doc/writ/examples"
    # Stripped like dh_strip does; the Swift runtime is linked in, so these need no toolchain.
    install -m 0755 "$BUILD/writ" "$root/usr/bin/writ"
    install -m 0755 "$BUILD/writd" "$root/usr/sbin/writd"
    install -m 0644 "$BUILD/pam_writ.so" "$pamdir/pam_writ.so"
    strip --remove-section=.comment --remove-section=.note "$root/usr/bin/writ" "$root/usr/sbin/writd"
    strip --remove-section=.comment --remove-section=.note --strip-unneeded "$pamdir/pam_writ.so"
    scripts/check-linkage.sh "$pamdir/pam_writ.so" >/dev/null    # stripping kept the exports
    # The sudo plugins are the same file: a sudo that loads both maps one copy.
    ln -s "../../lib/$MULTIARCH/security/pam_writ.so" "$root/usr/libexec/sudo/sudo_writ.so"
    sed -e "s|^ExecStart=/usr/local/sbin/writd|ExecStart=/usr/sbin/writd --hook-library /usr/lib/writ/python|" \
        -e "s|^Documentation=.*|Documentation=man:writd(8)|" -e "s|Installed by scripts/install.sh|Installed by the writ package|" \
        dist/writd.service >"$root/usr/lib/systemd/system/writd.service"
    install -m 0644 hooks/python/writ_hook.py "$root/usr/lib/writ/python/writ_hook.py"
    install -m 0644 dist/policy.yaml dist/policy.tests.yaml "$root/etc/writ/"
    install -m 0644 "$dist/logrotate" "$root/etc/logrotate.d/writ"
    install -m 0644 "$dist/pam-config" "$root/usr/share/pam-configs/writ"
    if [ -f "$dist/lintian-overrides" ]; then
        install -D -m 0644 "$dist/lintian-overrides" "$root/usr/share/lintian/overrides/writ"
    fi

    generate_manual "$BUILD/writ" --multi-page --section 1 --date "$(date -u -d "@$SOURCE_DATE_EPOCH" +%F)" \
        --output-directory "$root/usr/share/man/man1"
    # For mandb and apropos: a NAME without spaces (writ.request, like the file; the synopsis keeps
    # "writ request") and an unquoted description.
    for page in "$root"/usr/share/man/man1/*.1; do
        awk '/^\.Nm "/ && !name { name = substr($0, 6, length($0) - 6); dotted = name; gsub(/ /, ".", dotted)
                                   print ".Nm " dotted; next }
             /^\.Nm$/ && name { print ".Nm \"" name "\""; next }
             /^\.Nd "/ { sub(/^\.Nd "/, ".Nd "); sub(/"$/, "") }
             { print }' "$page" >"$WORK/page" && cat "$WORK/page" >"$page"
    done
    # writ(1)'s SEE ALSO lists the subcommands; add the hand-written pages.
    page=$root/usr/share/man/man1/writ.1
    if tail -1 "$page" | grep -q '^\.Xr '; then
        { sed '$ s/$/ ,/' "$page"; printf '%s\n' '.Xr writ-policy 5 ,' '.Xr writd 8 ,' '.Xr pam_writ 8 ,' '.Xr sudo_writ 8'; } \
            >"$WORK/page" && cat "$WORK/page" >"$page"
    fi
    for page in docs/man/*.[1-8]; do
        sed "s/@VERSION@/$UPSTREAM/g" "$page" >"$root/usr/share/man/man${page##*.}/$(basename "$page")"
    done
    # Completion files are sourced, not run: no #! line.
    "$BUILD/writ" --generate-completion-script bash | sed '1{/^#!/d}' >"$root/usr/share/bash-completion/completions/writ"
    "$BUILD/writ" --generate-completion-script zsh >"$root/usr/share/zsh/vendor-completions/_writ"
    "$BUILD/writ" --generate-completion-script fish >"$root/usr/share/fish/vendor_completions.d/writ.fish"

    install -m 0644 "$dist/README.Debian" README.md docs/*.md "$root/usr/share/doc/writ/"
    install -m 0644 examples/policy.yaml examples/policy.tests.yaml "$root/usr/share/doc/writ/examples/"
    install -d "$root/usr/share/doc/writ/examples/hooks" "$root/usr/share/doc/writ/examples/pam.d"
    install -m 0644 examples/hooks/* "$root/usr/share/doc/writ/examples/hooks/"
    install -m 0644 pam.d/* "$root/usr/share/doc/writ/examples/pam.d/"
}

mkdir -p "$WORK/debian/writ"
stage_writ "$WORK/debian/writ"
finish_package writ "$WORK/debian/writ"
