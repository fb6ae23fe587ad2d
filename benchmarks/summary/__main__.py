"""``python -m benchmarks.summary``: rebuild summary.md from the result files, running nothing."""

import argparse
from pathlib import Path

from benchmarks.summary import RESULTS, write


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--quality", type=Path, help="quality reports (default: --results)")
    args = parser.parse_args(argv)
    print(write(args.results, args.quality))


if __name__ == "__main__":
    main()
