#!/usr/bin/env bash
# Runs on the lent GPU machine, before anything uses .devbin: unpacks the xz-compressed binaries
# that build_variants.sh leaves there (.devbin/mk-NAME.xz: a 9 MB binary packs to ~1.6 MB, so a dozen
# variants fit the device tool's 64 MiB carry) beside themselves, once. Python's lzma, so the machine
# needs no xz.
set -euo pipefail
python3 - <<'PY'
import glob, lzma, os, shutil
for packed in sorted(glob.glob(".devbin/*.xz")):
    out = packed[:-3]
    if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(packed):
        continue
    with lzma.open(packed) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.chmod(out, 0o755)
PY
