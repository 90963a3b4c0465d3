"""``typefaces``: a fine-grained retrieval dataset rendered from the fonts that matplotlib ships.

Each class is one typeface (21 in all: DejaVu Sans, Sans Mono and Serif in four
styles each, STIX General in four styles, and five Computer Modern faces). Each
image shows a short English word at a random size, position and small rotation,
with random ink and background grey levels. Rendering is deterministic for a
given seed and configuration, happens once, and is cached on disk as PNG files
in a train/test folder layout, so the dataset needs no download.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import List, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .registry import register_dataset
from .splits import DatasetSplits, Split

logger = logging.getLogger(__name__)

# (class name, file name under matplotlib's mpl-data/fonts/ttf)
TYPEFACES: List[Tuple[str, str]] = [
    ("DejaVu Sans", "DejaVuSans.ttf"),
    ("DejaVu Sans Bold", "DejaVuSans-Bold.ttf"),
    ("DejaVu Sans Oblique", "DejaVuSans-Oblique.ttf"),
    ("DejaVu Sans Bold Oblique", "DejaVuSans-BoldOblique.ttf"),
    ("DejaVu Sans Mono", "DejaVuSansMono.ttf"),
    ("DejaVu Sans Mono Bold", "DejaVuSansMono-Bold.ttf"),
    ("DejaVu Sans Mono Oblique", "DejaVuSansMono-Oblique.ttf"),
    ("DejaVu Sans Mono Bold Oblique", "DejaVuSansMono-BoldOblique.ttf"),
    ("DejaVu Serif", "DejaVuSerif.ttf"),
    ("DejaVu Serif Bold", "DejaVuSerif-Bold.ttf"),
    ("DejaVu Serif Italic", "DejaVuSerif-Italic.ttf"),
    ("DejaVu Serif Bold Italic", "DejaVuSerif-BoldItalic.ttf"),
    ("STIX General", "STIXGeneral.ttf"),
    ("STIX General Bold", "STIXGeneralBol.ttf"),
    ("STIX General Italic", "STIXGeneralItalic.ttf"),
    ("STIX General Bold Italic", "STIXGeneralBolIta.ttf"),
    ("Computer Modern Roman", "cmr10.ttf"),
    ("Computer Modern Bold", "cmb10.ttf"),
    ("Computer Modern Italic", "cmti10.ttf"),
    ("Computer Modern Sans", "cmss10.ttf"),
    ("Computer Modern Typewriter", "cmtt10.ttf"),
]

# Short common English words; letters only, so every font above has the glyphs.
WORDS = (
    "able acid aged also area army away baby back ball band bank base bath bear beat "
    "bell belt best bird blow blue boat body bone book born both bowl busy cake call "
    "calm camp card care case cash cast cell chat chip city club coal coat code cold "
    "cook cool copy core cost crew crop dark data date dawn days dead deal dear debt "
    "deep desk dial diet dish door down draw drop drug dual duke dust duty each earn "
    "ease east easy edge else even ever face fact fair fall farm fast fear feel fill "
    "film find fine fire firm fish five flat flow food foot form fort four free from "
    "fuel full fund gain game gate gave gift girl give glad goal gold golf good gray "
    "grew grow half hall hand hang hard harm head hear heat held hell help here hero "
    "high hill hire hold hole holy home hope host hour huge hung hunt idea inch into "
    "iron item jazz join jump jury just keen keep kept kick kind king knew know lack "
    "lady laid lake land lane last late lead left less life lift like line link list "
    "live load loan lock logo long look lord lose loss love luck made mail main make "
    "male many mark mass meal mean meat meet menu mild milk mind mine miss mode mood "
    "moon more most move much must name navy near neck need news next nice nine none "
    "nose note okay once only open oral over pace pack page paid pain pair palm park "
    "part pass past path peak pick pink pipe plan play plot plug plus poll pool poor "
    "port post pull pure push quiz race rail rain rank rare rate read real rear rely "
    "rent rest rice rich ride ring rise risk road rock role roll roof room root rose "
    "rule rush safe sail sale salt same sand save seat seed seek seen self sell send "
    "ship shop shot show shut sick side sign site size skin slip slow snow soft soil "
    "sold sole some song soon sort soul spot star stay step stop such suit sure take "
    "tale talk tall tank tape task team tech tell tend term test text than that them "
    "then they thin this thus tide tied till time tiny told tone took tool tour town "
    "tree trip true tune turn twin type unit upon used user vary vast very view vote "
    "wage wait wake walk wall want warm wash wave ways weak wear week well went were "
    "west what when whom wide wife wild will wind wine wing wire wise wish with wood "
    "word wore work yard yeah year your zero zone"
).split()

RENDER_VERSION = 1


def font_directory() -> Path:
    """Return matplotlib's folder of bundled TrueType fonts."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _load_font(file_name: str, size: int) -> ImageFont.FreeTypeFont:
    path = font_directory() / file_name
    if not path.is_file():
        raise FileNotFoundError(
            f"font file {path} not found; the typefaces dataset needs the fonts that "
            "matplotlib ships (reinstall matplotlib)"
        )
    return ImageFont.truetype(str(path), size)


def render_word(word: str, font_file: str, image_size: int, rng: np.random.Generator) -> Image.Image:
    """Render ``word`` in one font as an ``image_size`` square RGB image.

    The font size is 30–55 % of the image side, shrunk until the word fits.
    The word goes to a random position and is rotated by at most 6 degrees.
    Ink and background are random grey levels, dark on light in 80 % of images.
    """
    scale = 4  # draw at 4x and downsample, so small images keep clean strokes
    canvas = image_size * scale
    font_size = int(canvas * rng.uniform(0.30, 0.55))
    while True:
        font = _load_font(font_file, font_size)
        left, top, right, bottom = font.getbbox(word)
        width, height = right - left, bottom - top
        if width <= canvas * 0.92 or font_size <= 8:
            break
        font_size = int(font_size * 0.9)
    ink = int(rng.integers(0, 90))
    background = int(rng.integers(170, 256))
    if rng.random() < 0.2:
        ink, background = 255 - ink, 255 - background
    x = rng.uniform(0, max(canvas - width, 0)) - left
    y = rng.uniform(0, max(canvas - height, 0)) - top
    image = Image.new("L", (canvas, canvas), background)
    ImageDraw.Draw(image).text((x, y), word, fill=ink, font=font)
    angle = rng.uniform(-6.0, 6.0)
    image = image.rotate(angle, resample=Image.BICUBIC, fillcolor=background)
    image = image.resize((image_size, image_size), Image.LANCZOS)
    return image.convert("RGB")


def _cache_name(image_size: int, train_per_class: int, test_per_class: int, seed: int) -> str:
    return f"v{RENDER_VERSION}-{image_size}px-train{train_per_class}-test{test_per_class}-seed{seed}"


def _collect(folder: Path, class_names: List[str]) -> Tuple[Split, Split]:
    splits = []
    for split_dir, split_name in (("test", "query"), ("train", "database")):
        paths, labels = [], []
        for label, _ in enumerate(class_names):
            files = sorted((folder / split_dir / f"{label:02d}").glob("*.png"))
            paths.extend(str(p) for p in files)
            labels.extend([label] * len(files))
        splits.append(Split(split_name, paths, np.array(labels, dtype=np.int64), list(class_names)))
    return splits[0], splits[1]


def render_typefaces(folder: Path, image_size: int, train_per_class: int, test_per_class: int, seed: int) -> None:
    """Render the whole dataset into ``folder`` (``train/<id>/*.png``, ``test/<id>/*.png``).

    Writes into a temporary sibling folder and renames it at the end, so an
    interrupted rendering leaves no half-filled cache behind.
    """
    from tqdm.auto import tqdm

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=folder.name + ".partial-", dir=folder.parent))
    try:
        total = len(TYPEFACES) * (train_per_class + test_per_class)
        with tqdm(total=total, desc="rendering typefaces", unit="img", mininterval=1.0) as bar:
            for label, (_, font_file) in enumerate(TYPEFACES):
                for split_dir, count in (("train", train_per_class), ("test", test_per_class)):
                    out_dir = staging / split_dir / f"{label:02d}"
                    out_dir.mkdir(parents=True)
                    # One generator per (class, split): adding classes or images keeps the others unchanged.
                    rng = np.random.default_rng([seed, label, 0 if split_dir == "train" else 1])
                    for index in range(count):
                        word = WORDS[int(rng.integers(len(WORDS)))]
                        if rng.random() < 0.5:
                            word = word.capitalize()
                        render_word(word, font_file, image_size, rng).save(out_dir / f"{index:05d}_{word}.png")
                        bar.update(1)
        meta = {
            "render_version": RENDER_VERSION,
            "image_size": image_size,
            "train_per_class": train_per_class,
            "test_per_class": test_per_class,
            "seed": seed,
            "class_names": [name for name, _ in TYPEFACES],
            "font_files": [font for _, font in TYPEFACES],
        }
        (staging / "typefaces.json").write_text(json.dumps(meta, indent=2))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@register_dataset("typefaces")
def build_typefaces(
    root: Path,
    image_size: int = 64,
    train_per_class: int = 60,
    test_per_class: int = 15,
    seed: int = 0,
) -> DatasetSplits:
    """Render (once) and load the typefaces dataset under ``root``.

    Args:
        root: cache folder; each configuration gets its own subfolder.
        image_size: rendered image side in pixels.
        train_per_class: database images per typeface.
        test_per_class: query images per typeface.
        seed: rendering seed.
    """
    for name, value, minimum in (
        ("image_size", image_size, 16),
        ("train_per_class", train_per_class, 1),
        ("test_per_class", test_per_class, 1),
    ):
        if not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError(f"typefaces option {name} must be an integer >= {minimum}, got {value!r}")
    class_names = [name for name, _ in TYPEFACES]
    folder = Path(root) / _cache_name(image_size, train_per_class, test_per_class, seed)
    if not (folder / "typefaces.json").is_file():
        logger.info("rendering typefaces into %s", folder)
        render_typefaces(folder, image_size, train_per_class, test_per_class, seed)
    else:
        logger.info("using cached typefaces in %s", folder)
    query, database = _collect(folder, class_names)
    expected = (test_per_class * len(class_names), train_per_class * len(class_names))
    if (len(query), len(database)) != expected:
        raise RuntimeError(
            f"typefaces cache {folder} is incomplete ({len(query)} query, {len(database)} "
            f"database images, expected {expected[0]} and {expected[1]}); delete the folder to render it again"
        )
    return DatasetSplits("typefaces", str(folder), query, database, extra={"render_options": {
        "image_size": image_size, "train_per_class": train_per_class,
        "test_per_class": test_per_class, "seed": seed}})
