"""Time exact mAP@all of semicon_core.evaluation against the classic per-query argsort loop.

Random {-1, +1} codes and uniformly random class labels at the query/database sizes of
CUB-200-2011, NABirds and Food-101. The loop is the usual implementation: for each query,
compute its Hamming distances, argsort them (stable, so ties follow database index like
the package does) and average precision at the relevant positions. When Nq exceeds
``--loop-queries``, the loop runs on that many first queries only and its time is
extrapolated linearly to all queries. The table marks such rows with ``*``, and both
mAPs are compared on that same subset.

Usage: python benchmarks/bench_map.py [--bits 12 48] [--loop-queries 1000] [--threads N]

On a machine shared with other CPU-bound jobs, pass ``--threads 1``: with more threads than
idle cores, the many small torch operations of both methods can run ten times slower.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from semicon_core.evaluation import average_precision, mean_average_precision

# name: (queries, database items, classes), query = test split, database = train split.
SIZES = {
    "cub-2011": (5794, 5994, 200),
    "nabirds": (24633, 23929, 555),
    "food101": (25250, 75750, 101),
}


def loop_mean_average_precision(query_codes, database_codes, query_labels, database_labels) -> float:
    """Compute mAP query by query with a stable argsort of each distance row."""
    code_length = query_codes.shape[1]
    total = 0.0
    for query, label in zip(query_codes, query_labels):
        relevant = database_labels == label
        num_relevant = int(relevant.sum())
        if num_relevant == 0:
            continue
        distances = 0.5 * (code_length - database_codes @ query)
        order = torch.argsort(distances, stable=True)
        positions = torch.nonzero(relevant[order]).flatten() + 1
        total += float((torch.arange(1, num_relevant + 1, dtype=torch.float64) / positions).mean())
    return total / query_codes.shape[0]


def random_problem(generator: torch.Generator, num_query: int, num_database: int, num_classes: int, code_length: int):
    def codes(rows):
        return torch.randint(0, 2, (rows, code_length), generator=generator).to(torch.float32) * 2 - 1

    return (
        codes(num_query),
        codes(num_database),
        torch.randint(0, num_classes, (num_query,), generator=generator),
        torch.randint(0, num_classes, (num_database,), generator=generator),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, nargs="+", default=[12, 48], help="code lengths to run (default: 12 48)")
    parser.add_argument(
        "--datasets", nargs="+", default=list(SIZES), choices=list(SIZES), help="dataset sizes to run (default: all)"
    )
    parser.add_argument(
        "--loop-queries",
        type=int,
        default=1000,
        help="queries timed with the per-query loop; the loop time is extrapolated to all queries (default: 1000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random codes and labels (default: 0)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads for both methods (default: torch's choice)"
    )
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    header = (
        f"{'dataset':<10} {'bits':>4} {'Nq':>6} {'Nd':>6} {'mAP (package)':>14} {'package s':>10} "
        f"{'loop s':>9} {'speed-up':>9} {'subset':>6} {'mAP subset pkg':>15} {'mAP subset loop':>15} {'|diff|':>8}"
    )
    print(header)
    print("-" * len(header))
    generator = torch.Generator().manual_seed(args.seed)
    for name in args.datasets:
        num_query, num_database, num_classes = SIZES[name]
        for code_length in args.bits:
            query_codes, database_codes, query_labels, database_labels = random_problem(
                generator, num_query, num_database, num_classes, code_length
            )

            start = time.perf_counter()
            package_map = mean_average_precision(query_codes, database_codes, query_labels, database_labels)
            package_seconds = time.perf_counter() - start

            subset = min(num_query, args.loop_queries)
            start = time.perf_counter()
            loop_map = loop_mean_average_precision(
                query_codes[:subset], database_codes, query_labels[:subset], database_labels
            )
            loop_seconds = (time.perf_counter() - start) * num_query / subset

            subset_map = float(
                average_precision(query_codes[:subset], database_codes, query_labels[:subset], database_labels).mean()
            )
            marker = "*" if subset < num_query else " "
            print(
                f"{name:<10} {code_length:>4} {num_query:>6} {num_database:>6} {package_map:>14.6f} "
                f"{package_seconds:>10.2f} {loop_seconds:>8.1f}{marker} {loop_seconds / package_seconds:>8.1f}x "
                f"{subset:>6} {subset_map:>15.8f} {loop_map:>15.8f} {abs(subset_map - loop_map):>8.1e}"
            )
    print(f"* loop time measured on the first {args.loop_queries} queries and extrapolated linearly to Nq")


if __name__ == "__main__":
    main()
