"""mypy with a shrinking baseline: fail on any type error that mypy-baseline.txt does not list.

    python scripts/mypy_baseline.py            # check (what .ci/run runs): exit 1 on a new error
    python scripts/mypy_baseline.py --update   # rewrite the baseline after fixing errors (never adds any)

mypy runs with the settings in pyproject.toml ([tool.mypy]: the lexmargin package).  An error is keyed by
file, message and error code, without its line number, so edits elsewhere in a file do not disturb the
baseline; a key may be listed several times (as often as it occurs).  When listed errors no longer occur
the check passes and says the baseline can shrink; ``--update`` then removes them.  ``--update`` refuses to
add an error (fix it, or ``# type: ignore[code]`` it with a reason) unless ``--allow-new`` is given.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "mypy-baseline.txt"
ERROR = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?:\d+:)? error: (?P<message>.*?)(?:\s+\[(?P<code>[a-z0-9-]+)\])?$")
HEADER = ("# mypy errors not fixed yet (python scripts/mypy_baseline.py): file | message [code], one per occurrence.\n"
          "# This list only shrinks: fix an error, then run `python scripts/mypy_baseline.py --update`.\n")


def run_mypy() -> tuple[list[tuple[str, str]], str]:
    """Run mypy on the configured package; return its errors as (key, "file:line") pairs and its output."""
    done = subprocess.run([sys.executable, "-m", "mypy", "--no-color-output", "--no-error-summary",
                           "--show-error-codes", "--hide-error-context"],
                          cwd=ROOT, capture_output=True, text=True)
    if done.returncode not in (0, 1) or (done.returncode == 1 and ": error: " not in done.stdout):
        sys.exit(f"mypy did not run (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    errors = []
    for line in done.stdout.splitlines():
        match = ERROR.match(line)
        if match:
            key = f"{match['file']} | {match['message']} [{match['code'] or 'misc'}]"
            errors.append((key, f"{match['file']}:{match['line']}"))
    return errors, done.stdout


def read_baseline() -> Counter:
    """The baseline's keys with their counts (comments and blank lines skipped)."""
    if not BASELINE.exists():
        return Counter()
    lines = BASELINE.read_text().splitlines()
    return Counter(line for line in lines if line.strip() and not line.startswith("#"))


def write_baseline(keys: Counter) -> None:
    BASELINE.write_text(HEADER + "".join(f"{key}\n" for key in sorted(keys.elements())))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--update", action="store_true", help="rewrite the baseline with the errors that remain")
    parser.add_argument("--allow-new", action="store_true", help="with --update: also list new errors")
    args = parser.parse_args(argv)

    errors, _ = run_mypy()
    current = Counter(key for key, _ in errors)
    baseline = read_baseline()
    new = current - baseline
    fixed = baseline - current

    if args.update:
        if new and not args.allow_new:
            print(f"{sum(new.values())} error(s) not in the baseline; fix them (or pass --allow-new):")
            for key, where in errors:
                if new[key]:
                    print(f"  {where}: {key.split(' | ', 1)[1]}")
            return 1
        write_baseline(current)
        print(f"{BASELINE.name}: {sum(current.values())} error(s) (was {sum(baseline.values())})")
        return 0

    if new:
        print(f"mypy: {sum(new.values())} error(s) not in {BASELINE.name} (fix them; the baseline only shrinks):")
        for key, where in errors:      # every line of a key with new occurrences (which is new cannot be told)
            if new[key]:
                print(f"  {where}: {key.split(' | ', 1)[1]}")
        return 1
    print(f"mypy: no errors outside the baseline ({sum(current.values())} listed in {BASELINE.name}).")
    if fixed:
        print(f"The baseline can shrink: {sum(fixed.values())} listed error(s) no longer occur; "
              "run `python scripts/mypy_baseline.py --update` and commit mypy-baseline.txt:")
        for key in sorted(fixed.elements()):
            print(f"  {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
