#!/usr/bin/env python3
"""Resident pages of a running process's own executable, by ELF section: what an idle daemon's
RSS is made of (BENCHMARKS.md, the agent's RSS). Reads /proc/PID/maps and /proc/PID/pagemap (root)
and the section table from `readelf -S -W`.

    scripts/rss-by-section.py PID
"""
import collections
import os
import re
import struct
import subprocess
import sys

pid = int(sys.argv[1])
exe = os.readlink(f"/proc/{pid}/exe")
page = os.sysconf("SC_PAGE_SIZE")
maps = []
for line in open(f"/proc/{pid}/maps"):
    p = line.split()
    if len(p) >= 6 and p[5] == exe:
        lo, hi = (int(x, 16) for x in p[0].split("-"))
        maps.append((lo, hi, int(p[2], 16)))
base = min(lo - off for lo, _, off in maps)
sections = []
for line in subprocess.run(["readelf", "-S", "-W", exe], capture_output=True, text=True, check=True).stdout.splitlines():
    m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", line)
    if m and int(m.group(2), 16) > 0:
        sections.append((int(m.group(2), 16), int(m.group(3), 16), m.group(1)))
resident = collections.Counter()
with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
    for lo, hi, _ in maps:
        n = (hi - lo) // page
        pagemap.seek(lo // page * 8)
        data = pagemap.read(n * 8)
        for i in range(n):
            (entry,) = struct.unpack_from("<Q", data, i * 8)
            if not (entry >> 63) & 1:
                continue
            va = lo + i * page - base
            name = next((nm for a, size, nm in sections if a <= va < a + size or va <= a < va + page), "?")
            resident[name] += 1
sizes = {nm: size for _, size, nm in sections}
print(f"{exe} (pid {pid}): resident KiB / section KiB")
for name, n in resident.most_common():
    print(f"{n * page // 1024:8d} / {sizes.get(name, 0) // 1024:<8d} {name}")
print(f"{sum(resident.values()) * page // 1024:8d} in all")
