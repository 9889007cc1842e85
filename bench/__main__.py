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
    # Names come first; everything from the first option on is passed through, so an option's
    # value ("--letters 3000") stays with its option.
    split = next((i for i, arg in enumerate(argv) if arg.startswith("-")), len(argv))
    chosen, options = argv[:split] or BENCHMARKS, argv[split:]
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
