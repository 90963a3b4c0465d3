"""Print a run folder's mAP per code length: ``python -m semicon_core.summary RUN_FOLDER``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .runs import read_json


def format_summary(run_dir: Path) -> str:
    """Return a short text table of a run's final, best and random-code mAP per code length."""
    metrics = read_json(run_dir / "metrics.json")
    lines = [
        f"run folder: {run_dir.resolve()}",
        f"dataset {metrics['dataset']}, arch {metrics['arch']}, status {metrics['status']}, "
        f"total {metrics.get('timings', {}).get('total_seconds', float('nan')):.0f} s",
        f"{'bits':>5} {'final mAP':>10} {'best mAP':>10} {'random':>8} {'best/random':>12}",
    ]
    for row in metrics.get("summary", []):
        final, best, chance = row.get("final_map"), row.get("best_map"), row.get("random_baseline_map")
        ratio = best / chance if best is not None and chance else float("nan")
        lines.append(
            f"{row['code_length']:>5} {final if final is not None else float('nan'):>10.4f} "
            f"{best if best is not None else float('nan'):>10.4f} {chance:>8.4f} {ratio:>12.1f}"
        )
    lines.append("best mAP is selected on the query set (as the authors' release reports); final mAP is the last iteration")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path, help="run folder holding metrics.json")
    args = parser.parse_args(argv)
    if not (args.run_dir / "metrics.json").is_file():
        print(f"error: {args.run_dir / 'metrics.json'} not found; is {args.run_dir} a run folder?", file=sys.stderr)
        return 2
    print(format_summary(args.run_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
