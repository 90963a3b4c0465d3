"""The image dataset shared by every loader, and the train/eval transforms."""

from __future__ import annotations

import logging
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_rgb(path: str) -> Image.Image:
    """Open an image file and convert it to 8-bit RGB.

    Handles grayscale, 16-bit grayscale, CMYK, palette and RGBA files. Raises
    ``OSError`` naming the file when it cannot be read or is truncated.
    """
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                # 16-bit or 32-bit grayscale: scale to 8 bits instead of clipping.
                array = np.asarray(image, dtype=np.float64)
                peak = 65535.0 if image.mode.startswith("I;16") else max(array.max(), 1.0)
                image = Image.fromarray(np.clip(array / peak * 255.0, 0, 255).astype(np.uint8))
            if image.mode == "P" and "transparency" in image.info:
                image = image.convert("RGBA")
            if image.mode in ("RGBA", "LA", "PA"):
                background = Image.new("RGB", image.size, (255, 255, 255))
                background.paste(image.convert("RGBA"), mask=image.convert("RGBA").split()[-1])
                return background
            return image.convert("RGB")
    except (OSError, SyntaxError, ValueError) as error:
        raise OSError(
            f"cannot read image {path}: {error}. To find every such file before training, set "
            "data_options verify_images: full (add skip_bad_images: true to drop them)"
        ) from error


class ImageDataset(Dataset):
    """Images and integer labels, read from disk as RGB on each access.

    Items are ``(image, label, index)``: the transformed image, the int class id
    and the item's position in ``paths`` (used to address rows of the code matrix).
    """

    def __init__(self, paths: Sequence[str], labels: Sequence[int], transform: Optional[Callable] = None):
        if len(paths) != len(labels):
            raise ValueError(f"got {len(paths)} paths but {len(labels)} labels")
        self.paths = list(paths)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        image = load_rgb(self.paths[index])
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index]), index


def train_transform(image_size: int = 224) -> Callable:
    """RandomResizedCrop + horizontal flip + ImageNet normalisation (the release's training augmentation)."""
    return T.Compose([
        T.RandomResizedCrop(image_size),
        T.RandomHorizontalFlip(),
        T.ToTensor(),
        T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


def eval_transform(image_size: int = 224) -> Callable:
    """Resize to 8/7 of the crop + CenterCrop (256/224 at the published size) + ImageNet normalisation."""
    resize = int(round(image_size * 256 / 224))
    return T.Compose([
        T.Resize(resize),
        T.CenterCrop(image_size),
        T.ToTensor(),
        T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


def build_transform(kind: str, image_size: int, augmentation: str = "release") -> Callable:
    """Return the transform for ``kind`` in {"train", "eval"}.

    ``augmentation="release"`` uses the release's RandomResizedCrop + flip for
    training. ``"light"`` uses a milder crop (scale 0.6–1, aspect 3/4–4/3) and
    no flip, because in data such as text a mirrored image is another class.
    """
    if kind == "eval":
        return eval_transform(image_size)
    if kind != "train":
        raise ValueError(f"transform kind must be 'train' or 'eval', got {kind!r}")
    if augmentation == "release":
        return train_transform(image_size)
    if augmentation == "light":
        return T.Compose([
            T.RandomResizedCrop(image_size, scale=(0.6, 1.0)),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ])
    if augmentation == "none":
        return eval_transform(image_size)
    raise ValueError(f"augmentation must be 'release', 'light' or 'none', got {augmentation!r}")


def to_tensor_labels(labels: Sequence[int]) -> torch.Tensor:
    """Return (N,) int64 labels as a tensor."""
    return torch.as_tensor(np.asarray(labels, dtype=np.int64))
