"""Time one SGD training step and eval-mode throughput of the hashing networks on the CPU.

Example:
    python benchmarks/bench_model_speed.py --threads 2 --batch-size 16

Each configuration is ``arch:backbone:image_size``. Models use random weights
(pretrained="none"), which does not change the cost. A training step is a
forward pass, a squared-error loss against random +-1 targets, a backward pass
and an SGD update with the release's settings (Nesterov momentum 0.91, weight
decay 1e-4). Times are medians over ``--steps`` repetitions after one warm-up.
The script also prints the process CPU time per training step and the load
average, because other processes on a shared machine inflate wall times.
"""

import argparse
import logging
import os
import platform
import statistics
import time
from typing import List, Tuple

import torch

from semicon_core.models import build_model

logger = logging.getLogger(__name__)

DEFAULT_CONFIGS = "semicon:resnet18:64,semicon:resnet50:64,semicon:resnet50:224,baseline:resnet50:224"


def parse_configs(text: str) -> List[Tuple[str, str, int]]:
    """Parse ``arch:backbone:size,...`` into a list of (arch, backbone, size)."""
    configs = []
    for item in text.split(","):
        try:
            arch, backbone, size = item.split(":")
            configs.append((arch, backbone, int(size)))
        except ValueError as error:
            raise argparse.ArgumentTypeError(
                f"invalid configuration {item!r}; expected arch:backbone:image_size, e.g. semicon:resnet50:224"
            ) from error
    return configs


def median_seconds(function, steps: int) -> Tuple[float, float]:
    """Run ``function`` once to warm up, then time ``steps`` runs.

    Returns:
        (median wall seconds, median process CPU seconds summed over threads).
    """
    function()
    wall_durations, cpu_durations = [], []
    for _ in range(steps):
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        function()
        wall_durations.append(time.perf_counter() - wall_start)
        cpu_durations.append(time.process_time() - cpu_start)
    return statistics.median(wall_durations), statistics.median(cpu_durations)


def measure(arch: str, backbone: str, image_size: int, batch_size: int, code_length: int, steps: int):
    """Return (wall seconds per training step, CPU seconds per training step, eval images per second)."""
    torch.manual_seed(0)
    model = build_model(arch, code_length, pretrained="none", backbone=backbone)
    images = torch.randn(batch_size, 3, image_size, image_size)
    targets = torch.randint(0, 2, (batch_size, code_length)).float() * 2 - 1
    optimizer = torch.optim.SGD(model.parameters(), lr=2.5e-4, momentum=0.91, nesterov=True, weight_decay=1e-4)

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        loss = (model(images) - targets).pow(2).mean()
        loss.backward()
        optimizer.step()

    model.train()
    train_seconds, train_cpu_seconds = median_seconds(train_step, steps)

    def eval_forward():
        with torch.inference_mode():
            model(images)

    model.eval()
    eval_seconds, _ = median_seconds(eval_forward, steps)
    return train_seconds, train_cpu_seconds, batch_size / eval_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default: 2)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per step (default: 16)")
    parser.add_argument("--code-length", type=int, default=48, help="bits of the hash code (default: 48)")
    parser.add_argument("--steps", type=int, default=3, help="timed repetitions after one warm-up (default: 3)")
    parser.add_argument(
        "--configs",
        type=parse_configs,
        default=parse_configs(DEFAULT_CONFIGS),
        help=f"comma-separated arch:backbone:image_size list (default: {DEFAULT_CONFIGS})",
    )
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, batch {args.batch_size}, code_length {args.code_length}, "
        f"median of {args.steps} after 1 warm-up"
    )
    print(
        f"{'arch':<9} {'backbone':<9} {'size':>5} {'train step (s)':>15} {'train CPU (s)':>14} "
        f"{'eval (images/s)':>16} {'load average':>13}"
    )
    for arch, backbone, image_size in args.configs:
        train_seconds, train_cpu_seconds, eval_rate = measure(
            arch, backbone, image_size, args.batch_size, args.code_length, args.steps
        )
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(
            f"{arch:<9} {backbone:<9} {image_size:>5} {train_seconds:>15.2f} {train_cpu_seconds:>14.2f} "
            f"{eval_rate:>16.1f} {load:>13.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
