#!/usr/bin/env python3
"""Sums `perf script` output of the daemon by phase and by the nearest crate frame.

A sample's phase is the first of these frames found anywhere in its stack: the upload handler,
the store's writer thread, a dispatch shard, sled's own threads, the HTTP server; the rest is
"other". Within a phase it is counted against the frame nearest its leaf that matches the
pattern given (default: any `campaignd::` frame), so library leaves (malloc, memcpy) are charged
to the code that called them.

    perf script -i perf.data | python3 loadtest/perf_fold.py 'campaignd::|sled::|serde_json::'
"""
import collections
import re
import sys

PHASES = [("upload", "api::upload"), ("store-writer", "store::writer"), ("dispatch-shard", "dispatch::shard"),
          ("sled-bg", "sled::"), ("hyper-server", "serve::")]
FRAME = re.compile(r"\s+[0-9a-f]+\s+(.*?)\s+\(")


def main():
    want = re.compile(sys.argv[1] if len(sys.argv) > 1 else r"campaignd::")
    per_phase = collections.Counter()
    per_frame = collections.defaultdict(collections.Counter)
    samples = 0

    def count(stack):
        nonlocal samples
        if not stack:
            return
        samples += 1
        joined = "\n".join(stack)
        phase = next((name for name, pattern in PHASES if pattern in joined), "other")
        per_phase[phase] += 1
        per_frame[phase][next((f for f in stack if want.search(f)), "?")] += 1

    stack = []
    for line in sys.stdin:
        line = line.rstrip("\n")
        if line[:1] in "\t " and line.strip():
            m = FRAME.match(line)
            if m:
                # Generic arguments and offsets only split one function into many rows.
                stack.append(re.sub(r"\+0x[0-9a-f]+$", "", re.sub(r"<.*?>", "", m.group(1)))[:120])
        else:
            count(stack)
            stack = []
    count(stack)
    for phase, n in per_phase.most_common():
        print(f"{phase:16s} {100 * n / samples:5.1f}%")
        for frame, k in per_frame[phase].most_common(14):
            print(f"      {100 * k / samples:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
