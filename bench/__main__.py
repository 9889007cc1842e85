"""Runs each benchmark module in its own process, so one's memory and Django setup cannot
colour another's numbers.

`python -m bench` runs them all; `python -m bench scale --small` runs the named ones, passing
the options (arguments starting with "-") to each.
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = ["nppes_import", "scale", "letters"]


def main(argv: list[str]) -> int:
    chosen = [arg for arg in argv if not arg.startswith("-")] or BENCHMARKS
    options = [arg for arg in argv if arg.startswith("-")]
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        print(f"Unknown benchmark(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    failed = []
    for name in chosen:
        done = subprocess.run([sys.executable, "-m", f"bench.{name}", *options], check=False)
        if done.returncode:
            failed.append(name)
    if failed:
        print(f"Failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
