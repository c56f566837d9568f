"""Sums a torch profiler trace (chrome trace JSON, as `engine_bench --profile`
writes it) per op name: self time, total time and calls, largest self time first.

Usage: profile_summary.py TRACE.json [ROWS]
"""
import collections
import json
import sys


def main() -> None:
    with open(sys.argv[1]) as f:
        trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    spans = sorted((e for e in events if e.get("ph") == "X"), key=lambda e: (e.get("tid"), e["ts"], -e["dur"]))
    total = collections.Counter()
    self_time = collections.Counter()
    calls = collections.Counter()
    # Self time = duration minus the time of direct children on the same thread.
    stack = []
    for e in spans:
        while stack and (stack[-1]["tid"] != e.get("tid") or stack[-1]["ts"] + stack[-1]["dur"] <= e["ts"]):
            stack.pop()
        if stack:
            self_time[stack[-1]["name"]] -= e["dur"]
        name = e["name"]
        total[name] += e["dur"]
        self_time[name] += e["dur"]
        calls[name] += 1
        stack.append(dict(e, tid=e.get("tid")))
    all_self = sum(self_time.values())
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    print(f"{'op':<48} {'self ms':>9} {'self %':>7} {'total ms':>9} {'calls':>7}")
    for name, t in self_time.most_common(rows):
        print(f"{name[:48]:<48} {t / 1e3:9.2f} {100 * t / all_self:6.1f}% {total[name] / 1e3:9.2f} {calls[name]:7d}")
    print(f"{'(all ops)':<48} {all_self / 1e3:9.2f}")


if __name__ == "__main__":
    main()
