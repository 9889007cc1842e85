"""`python -m bench [name] [options]`: run one benchmark by name, or all of them."""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench import scale

BENCHMARKS: dict[str, Callable[[list[str]], None]] = {
    "scale": scale.main,
}


def main() -> None:
    args = sys.argv[1:]
    if args and args[0] in BENCHMARKS:
        BENCHMARKS[args[0]](args[1:])
        return
    if args:
        raise SystemExit(f"Unknown benchmark {args[0]!r}; choose from {', '.join(BENCHMARKS)}.")
    for run in BENCHMARKS.values():
        run([])


if __name__ == "__main__":
    main()
