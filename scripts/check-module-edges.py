#!/usr/bin/env python3
"""The module edges: README's table against Package.swift and the imports in the sources.

Fails when
  - a file imports a Writ module (WritX, CWritX, CSQLite) that its module's README row does not
    list: an import that crosses the architecture;
  - README lists an edge that Package.swift does not declare (the table would tell a newcomer
    something untrue);
  - Package.swift declares a dependency (Writ module or package product) that no file of the
    target imports, unless README marks it "(link only…)";
  - a target under Sources/ or Fuzz/ has no README row, or a row names no target.

Usage: scripts/check-module-edges.py [PACKAGE_DIR]   (needs `swift package dump-package`)
"""

import json
import pathlib
import re
import subprocess
import sys

# Modules of the toolchain and the system: imported where needed, never an edge.
SYSTEM = {"Glibc", "Darwin", "Dispatch", "Foundation", "FoundationEssentials", "Synchronization", "CLibc",
          "_Concurrency", "Testing", "XCTest"}
IMPORT = re.compile(r"^\s*(?:@\w+(?:\([^)]*\))?\s+)*(?:(?:public|package|internal|private|fileprivate)\s+)?"
                    r"import\s+(?:(?:struct|class|enum|protocol|func|var|let|typealias)\s+)?([A-Za-z_][A-Za-z0-9_]*)")


def is_writ(name):
    return name.startswith(("Writ", "CWrit")) or name == "CSQLite" or name in {"writd", "writ-fuzz", "writ-server"}


def readme_edges(text):
    """{module: (imports, link_only)} from the table under '### Module edges'."""
    section = text.split("### Module edges", 1)
    if len(section) < 2:
        sys.exit("check-module-edges: README.md has no '### Module edges' table")
    edges = {}
    for line in section[1].splitlines()[1:]:
        if line.startswith("#"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`"):
            continue
        module = cells[0].strip("`")
        imports, link_only = set(), set()
        for item in re.split(r",\s*", cells[1]):
            item = item.strip()
            if not item or item == "—":
                continue
            name = item.split()[0].strip("`")
            (link_only if "(link only" in item else imports).add(name)
        edges[module] = (imports, link_only)
    return edges


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    manifest = json.loads(subprocess.run(["swift", "package", "--package-path", str(root), "dump-package"],
                                         check=True, capture_output=True, text=True).stdout)
    edges = readme_edges((root / "README.md").read_text())
    problems = []
    checked = 0
    for target in manifest["targets"]:
        if target["type"] == "test":
            continue
        path = target.get("path") or f"Sources/{target['name']}"
        directory = root / path
        swift_files = list(directory.rglob("*.swift"))
        if not swift_files or not (path.startswith("Sources/") or path.startswith("Fuzz/")):
            continue  # C shims, benchmark tools, test fakes
        name = target["name"]
        declared = set()
        for dependency in target.get("dependencies", []):
            kind, value = next(iter(dependency.items()))
            declared.add(value[0])
        imported = {}
        for file in swift_files:
            for number, line in enumerate(file.read_text().splitlines(), 1):
                m = IMPORT.match(line)
                if m and m.group(1) not in SYSTEM:
                    imported.setdefault(m.group(1), f"{file.relative_to(root)}:{number}")
        if name not in edges:
            problems.append(f"{name}: no row in README.md's module edges table")
            continue
        allowed, link_only = edges[name]
        checked += 1
        for module, where in sorted(imported.items()):
            if is_writ(module) and module not in allowed:
                problems.append(f"{where}: {name} imports {module}, which README.md's module edges do not allow")
        for module in sorted(allowed | link_only):
            if module not in declared:
                problems.append(f"README.md: {name} → {module} is listed, but Package.swift does not declare it")
        # Products import under their own module name (NIOHTTP1 from swift-nio, Crypto, Yams...).
        for module in sorted(declared):
            if module not in imported and module not in link_only:
                problems.append(f"Package.swift: {name} depends on {module}, but nothing in {path} imports it")
    for module in sorted(set(edges) - {t["name"] for t in manifest["targets"]}):
        problems.append(f"README.md: the module edges table names {module}, which is not a target")
    for p in problems:
        print(f"FAIL: {p}")
    if problems:
        sys.exit(1)
    print(f"module edges: {checked} modules import only what README.md's table allows")


if __name__ == "__main__":
    main()
