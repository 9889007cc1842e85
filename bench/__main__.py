"""`make bench`: run every benchmark, or the one named (`python -m bench letters ...`)."""

from __future__ import annotations

import os
import sys

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "referral_crm.settings")
    django.setup()
    from bench import letters

    benchmarks = {"letters": letters.run}
    name, *rest = sys.argv[1:] or ["all"]
    if name == "all":
        for run in benchmarks.values():
            run([])
    elif name in benchmarks:
        benchmarks[name](rest)
    else:
        raise SystemExit(f"Unknown benchmark {name!r}; choose from {', '.join(benchmarks)}")


if __name__ == "__main__":
    main()
