"""Views of a raw window: the flips, transposes and time reversal that inference averages over.

The network was trained on crops flipped and transposed in space and reversed in time (crops.py),
so it enhances each such view of a clip about equally well, with errors that partly differ.
`test.self_ensemble` views are enhanced, each turned back, and averaged: 2 time directions x the 8
flips and transposes of the mosaic, so 16 at most, each costing one more pass of the network.

A view is made on the raw frames, before normalisation: the colour matrix mixes the four pixels of
each 2x2 block, so moving normalised pixels across block borders would mix the wrong ones. The
mosaic is mirrored by one pixel at each border, flipped or transposed, and cut again where it reads
config.CFA, as crops.py does for training. Every view, the window as it is included, is then
mirrored at its bottom and right to a multiple of `multiple` packed pixels (2**depth): at other
sizes the U-Net's pooling rounds a half-filled edge up, which it never met in training.
"""
import functools
from typing import NamedTuple

import numpy as np

from crops import cfa_codes, cfa_phase
from data import mosaic_from_packed, packed_from_mosaic

# Flips in the order views use them: the window itself, then its anti-transpose (bits 0, 1 and 2),
# the one spatial view that needs no cut at another phase, then the others.
FLIP_ORDER = (0, 7, 1, 6, 2, 5, 3, 4)  # 2 x 8 views: config.MAX_VIEWS


class View(NamedTuple):
    reverse_time: bool
    flips: int  # bit 0 flips the rows, bit 1 the columns, bit 2 transposes (applied first)


def views(count, frames):
    """The first `count` views (each flip with time forwards, then reversed) that differ for a
    window of `frames` frames: one frame reversed in time is itself, so it has 8."""
    every = [View(reverse_time, flips) for flips in FLIP_ORDER for reverse_time in (False, True)]
    return (every if frames > 1 else [view for view in every if not view.reverse_time])[:count]


def _flip(frames, flips):
    """(T, H, W, ...) frames flipped and transposed in space as `flips` says."""
    if flips & 4:
        frames = np.swapaxes(frames, 1, 2)
    if flips & 1:
        frames = frames[:, ::-1]
    if flips & 2:
        frames = frames[:, :, ::-1]
    return frames


def _unflip(frames, flips):
    """_flip undone: the same steps in the reverse order."""
    if flips & 2:
        frames = frames[:, :, ::-1]
    if flips & 1:
        frames = frames[:, ::-1]
    if flips & 4:
        frames = np.swapaxes(frames, 1, 2)
    return frames


@functools.cache  # asked for every view of every window
def _phase(flips):
    """(dy, dx) at which the mirrored-by-one, flipped mosaic reads config.CFA again."""
    codes = np.pad(cfa_codes(6, 6), 1, mode="reflect")
    return cfa_phase(_flip(codes[None], flips)[0])


def padded_size(length, multiple):
    """The packed length a view of `length` packed pixels is mirrored up to: a multiple of `multiple`."""
    return -(-length // multiple) * multiple


def show(packed_raw, view, multiple):
    """A (T, h, w, 4) raw window -> the view the network enhances, (T, h', w', 4), with h' and w'
    multiples of `multiple`. The window itself comes back unchanged when it needs no padding."""
    if view == View(False, 0) and packed_raw.shape[1] % multiple == packed_raw.shape[2] % multiple == 0:
        return packed_raw
    mosaic = mosaic_from_packed(packed_raw[::-1] if view.reverse_time else packed_raw)
    moved = _flip(np.pad(mosaic, ((0, 0), (1, 1), (1, 1)), mode="reflect"), view.flips)
    (dy, dx), (height, width) = _phase(view.flips), moved.shape[1:]
    cut = moved[:, dy:height - dy, dx:width - dx]  # one pixel in on both sides, or the whole
    # Mirroring keeps the CFA phase (it maps a row to one an even distance away) at any width.
    padding = [(0, 2 * padded_size(n // 2, multiple) - n) for n in cut.shape[1:]]
    return packed_from_mosaic(np.pad(cut, [(0, 0), *padding], mode="reflect"))


def restore(rgb, view, packed_shape):
    """The network's (T, 2h', 2w', 3) output for a view -> the window's (T, 2h, 2w, 3), for the
    window's `packed_shape` (T, h, w, 4)."""
    height, width = 2 * packed_shape[1], 2 * packed_shape[2]
    if view.flips & 4:
        height, width = width, height
    dy, dx = _phase(view.flips)
    rgb = _unflip(rgb[:, 1 - dy:1 - dy + height, 1 - dx:1 - dx + width], view.flips)
    return rgb[::-1] if view.reverse_time else rgb
