#!/usr/bin/env python3
"""Nsight Compute's per-SASS-instruction stall samples (ncu_step.sh's sass.csv.gz) by function, by
source file and by source line, mapped here without a GPU: nvdisasm -g of the same build's cubin
gives each instruction's offset its function and (file, line) (the builds carry -lineinfo). Use
where ncu's own source page cannot (its CSV needs the sources at import), e.g.:

  cuobjdump -xelf cuda_backend.sm_90a.cubin mk          # from the very binary that was profiled
  nvdisasm -g -c cuda_backend.sm_90a.cubin > dis.txt
  python3 bench/ncu_lines.py sass.csv.gz dis.txt --kernel 'megakernelILb1ENS0_11GenericSpec'

nvdisasm and cuobjdump come with the CUDA toolkit, or from PyPI (nvidia-cuda-nvdisasm, -cuobjdump).
Without a disassembly it prints the CSV's own rows with the most samples (ncu_step.sh's tables, on
the SASS page or on the CUDA source page).
"""
import argparse
import collections
import csv
import gzip
import re
import sys


def parse_disassembly(lines, kernel):
    """{offset: (function, (file, line) or None)} for the section of the kernel whose name has `kernel`."""
    start = next(i for i, l in enumerate(lines) if l.startswith("//---") and kernel in l)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("//---")), len(lines))
    function, where, out = "kernel body", None, {}
    for l in lines[start:end]:
        m = re.match(r"\s*\.type\s+\$?(\S+),@function", l)
        if m and m.group(1).count("$") > 0:  # a subfunction placed in the kernel's section
            function = m.group(1).split("$")[-1]
        m = re.search(r'//## File "([^"]+)", line (\d+)', l)
        if m:
            where = (m.group(1), int(m.group(2)))
            continue
        m = re.search(r"/\*([0-9a-f]{4,})\*/\s+(.*?);", l)
        if m:
            out[int(m.group(1), 16)] = (function, where)
    return out


def read_table(path, column=None):
    """(header, the counted column, the rows that have a count there) of an ncu source page CSV (SASS
    or CUDA lines; plain or gzipped). The column: the first whose name contains `column`, by default
    "Warp Stall Sampling (All Samples)"."""
    opener = gzip.open if path.endswith(".gz") else open
    rows = list(csv.reader(opener(path, "rt")))
    rows = rows[1:] if rows and rows[0] and rows[0][0] == "Kernel Name" else rows  # ncu 2025 adds a title row
    head = rows[0] if rows else []
    if column:
        cols = [i for i, h in enumerate(head) if column in h]
        if not cols:
            sys.exit(f"no column named like {column!r}; the page has: {', '.join(head)}")
    else:
        cols = [i for i, h in enumerate(head) if "Sampling" in h and "All" in h]
        if not cols:
            sys.exit(f"no sampling column in {head[:20]}")
    col = cols[0]
    return head, col, [r for r in rows[1:] if len(r) > col and r[col].replace(".", "").isdigit()]


def print_top_rows(path, top, column=None):
    """The page's own rows with the largest counts (stall samples, or `column`'s): address (or
    line) and source text, each as its share of the column's total."""
    _, col, data = read_table(path, column)
    total = sum(float(r[col]) for r in data) or 1
    for r in sorted(data, key=lambda r: -float(r[col]))[:top]:
        print(f"{float(r[col]) / total * 100:5.1f}%  {r[0]:>8}  {r[1][:100]}")


def read_samples(path):
    """[(offset from the kernel's first instruction, samples)] from ncu's SASS source page CSV."""
    _, col, data = read_table(path)
    base = int(data[0][0], 16)
    return [(int(r[0], 16) - base, int(float(r[col]))) for r in data]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sass_csv", help="ncu's source page as CSV (SASS; without a disassembly, CUDA lines too)")
    ap.add_argument("disassembly", nargs="?",
                    help="nvdisasm -g -c output of the profiled build's cubin; without it, the CSV's own rows")
    ap.add_argument("--kernel", default="megakernelILb1ENS0_11GenericSpec", help="part of the kernel's mangled name")
    ap.add_argument("--top", type=int, help="rows a table (default 30 by function, file and line; 40 rows)")
    ap.add_argument("--column", help="without a disassembly: rank by the column whose name contains this "
                    "(e.g. 'L1 Wavefronts Shared Excessive': shared memory bank conflicts) instead of stall samples")
    a = ap.parse_args()
    if a.disassembly is None:
        print_top_rows(a.sass_csv, a.top or 40, a.column)
        return
    if a.column:
        sys.exit("--column ranks the CSV's own rows: give no disassembly")
    where = parse_disassembly(open(a.disassembly).read().split("\n"), a.kernel)
    samples = read_samples(a.sass_csv)
    total = sum(s for _, s in samples) or 1
    unmatched = sum(s for o, s in samples if o not in where)
    by = {k: collections.Counter() for k in ("function", "file", "line")}
    for o, s in samples:
        function, fl = where.get(o, ("?", None))
        by["function"][function] += s
        by["file"][fl[0] if fl else None] += s
        by["line"][f"{fl[0]}:{fl[1]}" if fl else None] += s
    print(f"{total} samples; {unmatched} at offsets the disassembly does not have (another build?)")
    for k, c in by.items():
        print(f"\nby {k}:")
        for name, s in c.most_common(a.top or 30):
            print(f"{100 * s / total:6.1f}%  {name}")


if __name__ == "__main__":
    main()
