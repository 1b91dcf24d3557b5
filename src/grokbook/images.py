"""Gu et al.'s polygon-counting images, drawn in code at a CPU size (chapter 7).

Each picture is a 2 x 2 grid of cells; each cell is empty or holds a regular polygon with 3 to
``max_sides`` sides, and the label is the total number of sides (0, or 3 to ``4 * max_sides``).
Every combination of the four cells appears once: ``(max_sides - 1) ** 4`` pictures, a share
``frac`` of them drawn for training from the seed, the rest for testing.

What differs from the paper (Gu et al.; ``../shared/PAPERS.md`` section 4), on purpose: cells of
``cell`` pixels instead of 112 (224 x 224 pictures), one grey channel instead of three, white
lines on black (each polygon's outline and the spokes from its centre to its vertices), every
polygon upright (their generator turns three of the four by 180 degrees through a negative
radius), and up to ``max_sides`` sides so that the book's profile can stop at hexagons.
Polygons are drawn at four times the resolution and averaged down (Pillow's box filter), so
thin lines become grey levels rather than jagged pixels.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw

from grokbook.checks import check_int, check_memory, check_seed

MIN_SIDES, MAX_SIDES = 3, 12
MIN_CELL, MAX_CELL = 8, 64
SUPERSAMPLE = 4


def check_polygons(max_sides: int, cell: int, frac: float, seed: int = 0) -> None:
    """Raise ``ValueError`` naming the parameter for settings :func:`polygon_counting` cannot
    use: ``max_sides`` in 3..12, ``cell`` in 8..64 pixels, ``frac`` in (0, 1) leaving at least
    one picture on each side of the split."""
    check_int("max_sides", max_sides)
    if not MIN_SIDES <= max_sides <= MAX_SIDES:
        raise ValueError(f"max_sides must be an integer in {MIN_SIDES}..{MAX_SIDES}, "
                         f"got {max_sides}")
    check_int("cell", cell)
    if not MIN_CELL <= cell <= MAX_CELL:
        raise ValueError(f"cell must be an integer in {MIN_CELL}..{MAX_CELL} (pixels), "
                         f"got {cell}")
    if isinstance(frac, bool) or not isinstance(frac, (int, float)) \
            or not math.isfinite(frac) or not 0 < frac < 1:
        raise ValueError(f"frac must be a number in (0, 1), got {frac!r}")
    n = (max_sides - 1) ** 4
    n_train = round(frac * n)
    if not 0 < n_train < n:
        raise ValueError(f"frac {frac} of the {n} pictures leaves {n_train} for training: "
                         "both the training and the test set need at least one")
    check_seed(seed)


def polygon_cell(sides: int, cell: int) -> np.ndarray:
    """One cell, ``cell x cell`` float32 in [0, 1]: black, or (``sides`` in 3..12) a regular
    polygon's outline and spokes in white, a vertex at the top. ``sides`` 0 is an empty cell."""
    check_int("sides", sides, minimum=0)
    if sides and not MIN_SIDES <= sides <= MAX_SIDES:
        raise ValueError(f"sides must be 0 (an empty cell) or an integer in "
                         f"{MIN_SIDES}..{MAX_SIDES}, got {sides}")
    check_int("cell", cell)
    size = cell * SUPERSAMPLE
    picture = Image.new("L", (size, size), 0)
    if sides:
        draw = ImageDraw.Draw(picture)
        centre, radius = size / 2, 0.4 * size
        corners = [(centre + radius * math.sin(2 * math.pi * i / sides),
                    centre - radius * math.cos(2 * math.pi * i / sides)) for i in range(sides)]
        line = max(1, round(SUPERSAMPLE * cell / 16))  # about a pixel per 16 once reduced
        draw.line(corners + corners[:1], fill=255, width=line)
        for corner in corners:
            draw.line([(centre, centre), corner], fill=255, width=line)
    reduced = picture.resize((cell, cell), Image.Resampling.BOX)
    return np.asarray(reduced, dtype=np.float32) / 255.0


def label_count(shapes: torch.Tensor) -> torch.Tensor:
    """The label of each picture: the total number of sides of its four cells (rows of
    ``shapes``, 0 for an empty cell)."""
    return shapes.sum(dim=1)


@dataclass(frozen=True)
class ImageData:
    """Polygon-counting pictures (``(n, 1, 2 cell, 2 cell)`` float32) with their labels, and
    ``shapes_*``: each picture's four cells' numbers of sides (0: empty), top-left first."""

    max_sides: int
    cell: int
    frac: float
    seed: int
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    shapes_train: torch.Tensor
    shapes_test: torch.Tensor

    @property
    def n_classes(self) -> int:
        return 4 * self.max_sides + 1

    def __repr__(self) -> str:
        side = 2 * self.cell
        return (f"ImageData(polygon counting up to {self.max_sides} sides, {side} x {side} "
                f"pixels: {len(self.y_train)} train, {len(self.y_test)} test, seed {self.seed})")


def polygon_counting(max_sides: int = MAX_SIDES, cell: int = 16, frac: float = 0.25,
                     seed: int = 0) -> ImageData:
    """Every 2 x 2 grid of empty cells and polygons with 3..``max_sides`` sides, labelled with
    the total number of sides; ``frac`` of them (rounded) for training, drawn from ``seed``.
    Gu et al.: ``max_sides`` 12, 112-pixel cells, ``frac`` 0.25 (see the module doc)."""
    check_polygons(max_sides, cell, frac, seed)
    options = [0, *range(MIN_SIDES, max_sides + 1)]
    shapes = torch.tensor(list(itertools.product(options, repeat=4)), dtype=torch.long)
    n, side = len(shapes), 2 * cell
    check_memory(n * side * side * 4 * 3, f"{n:,} pictures of {side} x {side} pixels")
    cells = torch.stack([torch.from_numpy(polygon_cell(s, cell)) for s in options])
    index = {s: i for i, s in enumerate(options)}
    slots = torch.tensor([[index[int(s)] for s in row] for row in shapes])
    top = torch.cat([cells[slots[:, 0]], cells[slots[:, 1]]], dim=2)
    bottom = torch.cat([cells[slots[:, 2]], cells[slots[:, 3]]], dim=2)
    x = torch.cat([top, bottom], dim=1).unsqueeze(1).contiguous()
    y = label_count(shapes)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_train = round(frac * n)
    train, test = order[:n_train], order[n_train:]
    return ImageData(max_sides, cell, float(frac), seed, x[train], y[train], x[test], y[test],
                     shapes[train], shapes[test])
