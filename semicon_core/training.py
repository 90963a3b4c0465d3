"""ADSH training of one code length: sample, train epochs, update codes by DCC, evaluate.

The loop follows the authors' release. Each outer iteration samples ``m``
database images and trains the network on them for ``max_epoch`` epochs
against the learned database codes ``B``. One DCC pass then updates ``B``,
and the query set is evaluated against ``B``.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .adsh import adsh_loss, dcc_update, labels_to_onehot, signed, soft_similarity
from .data import DatasetSplits, ImageDataset, build_transform
from .params import TrainParams
from .progress import progress_bar

logger = logging.getLogger(__name__)


def select_device(requested: str = "auto") -> torch.device:
    """Return CUDA when available for ``"auto"``, else the requested device.

    Raises ``RuntimeError`` when ``"cuda"`` is requested and no GPU is visible.
    """
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but torch sees no GPU; use device 'auto' or 'cpu'")
    return torch.device(requested)


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (all devices); optionally force deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


class _SampleDataset(Dataset):
    """The sampled database images, yielding ``(image, position in the sample)``."""

    def __init__(self, base: ImageDataset, indices: Sequence[int]):
        self.base = base
        self.indices = list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int):
        image, _, _ = self.base[self.indices[position]]
        return image, position


@torch.no_grad()
def encode(
    model: torch.nn.Module,
    dataset: ImageDataset,
    device: torch.device,
    batch_size: int = 64,
    num_workers: int = 0,
    progress: str = "auto",
    description: str = "encoding",
) -> torch.Tensor:
    """Return (N, k) float codes in {-1, +1} for every image of ``dataset``, in eval mode, on the CPU."""
    was_training = model.training
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    chunks = []
    for images, _, _ in progress_bar(loader, mode=progress, desc=description, leave=False, unit="batch"):
        chunks.append(signed(model(images.to(device))).cpu())
    model.train(was_training)
    return torch.cat(chunks)


def random_baseline_map(query_labels: torch.Tensor, database_labels: torch.Tensor, code_length: int,
                        topk: Optional[int] = None, seed: int = 0) -> float:
    """Return the mAP of random {-1, +1} codes on the given labels (the chance level of the protocol)."""
    from .evaluation import mean_average_precision

    generator = torch.Generator().manual_seed(seed)
    query_codes = signed(torch.randn(len(query_labels), code_length, generator=generator))
    database_codes = signed(torch.randn(len(database_labels), code_length, generator=generator))
    return mean_average_precision(query_codes, database_codes, query_labels, database_labels, topk=topk)


def build_optimizer(params: TrainParams, model: torch.nn.Module) -> torch.optim.Optimizer:
    """Return SGD with Nesterov momentum (the release's choice) or Adam, per ``params.optimizer``."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if params.optimizer == "SGD":
        if params.momentum == 0:
            raise ValueError("parameter momentum: SGD here always uses Nesterov momentum, which needs momentum > 0")
        return torch.optim.SGD(trainable, lr=params.lr, momentum=params.momentum,
                               weight_decay=params.weight_decay, nesterov=True)
    return torch.optim.Adam(trainable, lr=params.lr, weight_decay=params.weight_decay)


@dataclass
class CodeLengthResult:
    """Outcome of training one code length: per-iteration records and the final codes."""

    code_length: int
    iterations: List[Dict[str, Any]] = field(default_factory=list)
    database_codes: Optional[torch.Tensor] = None  # (N, k) float in {-1, +1}, the learned B
    query_codes: Optional[torch.Tensor] = None  # (Nq, k) float in {-1, +1}, from the final network
    status: str = "running"  # "running", "complete" or "interrupted"
    train_seconds: float = 0.0

    @property
    def evaluated(self) -> List[Dict[str, Any]]:
        return [row for row in self.iterations if row.get("map") is not None]

    @property
    def final_map(self) -> Optional[float]:
        rows = self.evaluated
        return rows[-1]["map"] if rows and rows[-1]["iteration"] == self.iterations[-1]["iteration"] else None

    @property
    def best(self) -> Optional[Dict[str, Any]]:
        rows = self.evaluated
        return max(rows, key=lambda row: row["map"]) if rows else None


def train_code_length(
    params: TrainParams,
    splits: DatasetSplits,
    code_length: int,
    device: torch.device,
    model: Optional[torch.nn.Module] = None,
    progress: str = "auto",
    on_iteration: Optional[Callable[[CodeLengthResult, torch.nn.Module], None]] = None,
) -> tuple:
    """Train one code length from a fresh network with the ADSH protocol.

    Args:
        params: resolved training parameters.
        splits: query split (evaluated) and database split (trained on, coded by ``B``).
        code_length: bits ``k``.
        device: where the network and the code matrices live.
        model: a prebuilt network (built from ``params`` when ``None``).
        progress: progress bar style (see ``semicon_core.progress``).
        on_iteration: called after every outer iteration with the partial
            result and the model, for example to save metrics.

    Returns:
        ``(model, result)``. On ``KeyboardInterrupt`` the result is marked
        ``"interrupted"``, handed to ``on_iteration`` and the interrupt re-raised.
    """
    from .evaluation import mean_average_precision
    from .models import build_model

    seed_everything(params.seed, params.deterministic)
    if model is None:
        model = build_model(
            params.arch, code_length, pretrained=params.pretrained, **model_options(params),
        )
    model = model.to(device)
    optimizer = build_optimizer(params, model)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=params.lr_step, gamma=params.lr_gamma)

    database = splits.database
    num_database = len(database)
    num_classes = splits.num_classes
    database_labels = torch.as_tensor(database.labels)
    query_labels = torch.as_tensor(splits.query.labels)
    database_onehot = labels_to_onehot(database_labels, num_classes).to(device)

    if len(np.unique(database.labels)) < 2:
        raise ValueError(
            f"the database split of {splits.dataset} contains a single class; ADSH needs at least two "
            "classes, because the soft similarity is undefined when every pair is similar"
        )
    num_samples = params.num_samples
    if num_samples > num_database:
        logger.warning(
            "num_samples=%d exceeds the database size %d; every outer iteration samples the whole database",
            num_samples, num_database,
        )
        num_samples = num_database

    train_data = ImageDataset(database.paths, database.labels,
                              build_transform("train", params.image_size, params.augmentation))
    query_data = ImageDataset(splits.query.paths, splits.query.labels, build_transform("eval", params.image_size))

    generator = torch.Generator().manual_seed(params.seed)
    # The release starts B from a standard normal; the first DCC pass makes it {-1, +1}.
    codes = torch.randn(num_database, code_length, generator=generator).to(device)
    result = CodeLengthResult(code_length)
    start = time.perf_counter()

    outer = progress_bar(range(1, params.max_iter + 1), mode=progress, desc=f"{code_length} bits", unit="iter")
    try:
        for iteration in outer:
            iteration_start = time.perf_counter()
            sample_index = torch.randperm(num_database, generator=generator)[:num_samples]
            sample_index_device = sample_index.to(device)
            similarity = soft_similarity(database_onehot[sample_index_device], database_onehot)
            sample_outputs = torch.zeros(num_samples, code_length, device=device)

            loader = DataLoader(
                _SampleDataset(train_data, sample_index.tolist()), batch_size=params.batch_size,
                shuffle=True, num_workers=params.num_workers, generator=generator,
                drop_last=num_samples % params.batch_size == 1,  # BatchNorm cannot train on a batch of one
            )
            model.train()
            totals = {"loss": 0.0, "hash_loss": 0.0, "quantization_loss": 0.0}
            batches = 0
            inner = progress_bar(total=params.max_epoch * len(loader), mode=progress, desc="epochs", leave=False, unit="batch")
            for _ in range(params.max_epoch):
                for images, positions in loader:
                    images = images.to(device)
                    positions = positions.to(device)
                    outputs = model(images)
                    sample_outputs[positions] = outputs.detach()
                    terms = adsh_loss(outputs, codes, similarity[positions],
                                      codes[sample_index_device[positions]], params.gamma)
                    optimizer.zero_grad(set_to_none=True)
                    terms["loss"].backward()
                    optimizer.step()
                    for name in totals:
                        totals[name] += float(terms[name].detach())
                    batches += 1
                    inner.update(1)
                    inner.set_postfix(loss=f"{float(terms['loss'].detach()):.3f}", refresh=False)
            inner.close()

            codes = dcc_update(codes, sample_outputs, sample_index_device, similarity, params.gamma)
            learning_rate = optimizer.param_groups[0]["lr"]
            scheduler.step()
            train_time = time.perf_counter() - iteration_start

            row: Dict[str, Any] = {
                "iteration": iteration,
                "lr": learning_rate,
                **{name: value / max(batches, 1) for name, value in totals.items()},
                "map": None,
                "train_seconds": train_time,
            }
            if iteration % params.eval_every == 0 or iteration == params.max_iter:
                eval_start = time.perf_counter()
                query_codes = encode(model, query_data, device, params.eval_batch_size, params.num_workers,
                                     progress, description="encoding queries")
                row["map"] = mean_average_precision(query_codes, codes.cpu(), query_labels, database_labels,
                                                    topk=params.topk)
                row["eval_seconds"] = time.perf_counter() - eval_start
                result.query_codes = query_codes
            result.iterations.append(row)
            result.database_codes = codes.detach().cpu()
            result.train_seconds = time.perf_counter() - start
            postfix = {"loss": f"{row['loss']:.3f}"}
            if row["map"] is not None:
                postfix["mAP"] = f"{row['map']:.4f}"
            outer.set_postfix(postfix)
            logger.info(
                "%d bits, iteration %d/%d: loss %.4f (hash %.4f, quantization %.4f), mAP %s, %.1f s",
                code_length, iteration, params.max_iter, row["loss"], row["hash_loss"],
                row["quantization_loss"], "-" if row["map"] is None else f"{row['map']:.4f}", train_time,
            )
            if on_iteration is not None:
                on_iteration(result, model)
    except KeyboardInterrupt:
        result.status = "interrupted"
        result.train_seconds = time.perf_counter() - start
        logger.warning("training of %d bits interrupted after %d iterations", code_length, len(result.iterations))
        if on_iteration is not None:
            on_iteration(result, model)
        raise
    finally:
        outer.close()
    result.status = "complete"
    result.train_seconds = time.perf_counter() - start
    return model, result


def model_options(params: TrainParams) -> Dict[str, Any]:
    """Return the ``build_model`` options that ``params`` sets for its architecture."""
    if params.arch == "baseline":
        return {"backbone": params.backbone}
    return {
        "backbone": params.backbone,
        "sem_statistics": params.sem_statistics,
        "alpha": params.alpha,
        "refine_weights": params.refine_weights,
    }
