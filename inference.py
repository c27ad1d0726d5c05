"""Enhance whole clips of any length and size in overlapping tiles, streaming through time.

A clip is cut in time into windows of at most `tile_frames` frames that overlap by at least
`overlap_frames`, and each window in space into tiles of at most `tile_size` packed pixels that
overlap by at least `overlap_size`. Along each axis the fewest tiles are used, all of one size and
evenly spaced from border to border, so the overlap (work done twice) is as small as it can be.
Tiles are blended with weights that ramp up smoothly across each overlap, so no seam shows. Only
a few windows of input and output are in memory at a time, so memory follows the window (at most
`tile_frames`), not the clip: a 10,000-frame clip needs no more than one of a few windows.

Each window is enhanced as one or more views (views.py): the window itself, mirrored at its bottom
and right up to a size the U-Net pools evenly, and with `test.self_ensemble` its flips, transposes
and time reversal too, each turned back and averaged (a photo: `test.photo_self_ensemble`).

The clip is first extended at each end by `mirror_frames` frames mirrored about its end frame
(frames 1, 2, ... before frame 0), and the extension is dropped after enhancing: an end frame then
has neighbours on both sides, as a middle frame does, instead of copies of itself.

With `test.anchor_colour`, each finished frame is then scaled in linear light, region by region, so
that its means equal the input's (anchor_colour): the network's output drifts in brightness and
colour, while the input's means over a region are the scene's. With `test.steady`, the anchored
frames are averaged over time where the picture stands still (steady).

Frames too large for a window of them to fit `test.memory_gib` (memory_plan) are enhanced tile by
tile instead, each tile through every window of the clip, the input and output in temporary files
(_by_tiles), and anchored and steadied there once the last tile is done.

Four stages overlap, each a step ahead of the next at most: reading and normalising the next
window (a thread), the network and the blending on the current one (a thread), anchoring and
rounding the finished frames (a thread), and whatever the caller does with them (encoding,
metrics), so the model is rarely left waiting.
"""
import contextlib
import dataclasses
import math
import os
import queue
import tempfile
import threading

import cv2
import numpy as np
from tqdm import tqdm

import data
import network
import synthesis
import views
from metrics import area_means
from video_io import to_uint8

NEAR_WHITE = 0.9  # linear light of an output block's brightest channel (sRGB level 0.96) left out of the anchor
MIN_MEAN = 1e-4  # the mean linear light below which a frame's channel is not anchored
LINEAR_STEPS = 65535  # linear light -> uint8 sRGB by lookup: per pixel, the tone curve cost more than the network
LINEAR_TO_LEVEL = to_uint8(synthesis.linear_to_srgb(np.arange(LINEAR_STEPS + 1) / LINEAR_STEPS))
ANCHOR_CELL = 16  # 2x2 blocks a side: the anchor's statistics are taken over cells where the noise averages out
ANCHOR_TRUST = 30.0  # a cell's own gains count half where its input's mean is this many standard errors bright
MAX_TINT = 1.25  # the most the frame-wide gains scale one channel against the brightness, either way
# test.steady: residual noise averaged over time where the picture stands still. A pixel's change
# from its running average, as a box mean over STEADY_BOX pixels (levels), is noise below the first
# of STEADY_LEVELS and motion above the second; a still pixel takes STEADY_MIN_GAIN of each new value.
STEADY_LEVELS = (4.0, 14.0)
STEADY_BOX = 9
STEADY_MIN_GAIN = 0.2
STEADY_AHEAD = 4  # the backward average starts at least this many frames on (more changed nothing measured)
STEADY_BAND_BYTES = 512 * 2**20  # the memory that steadying frames enhanced tile by tile works in, about
GIB = 2**30
# Peak memory of one network call on a CPU (measured on the 2-core EPYC, docs/testing.md "Large
# frames"): a fixed part, and a part for each packed pixel of each frame in the call, by the
# layers' compute type.
CALL_BYTES = 0.65 * GIB
CALL_BYTES_PER_PIXEL = {"bfloat16": 550, "float16": 550, "float32": 1050}
WINDOW_COPIES = 3  # float RGB copies of a window that enhancing it holds at once (network, views, blend)


def tile_plan(length, max_tile, overlap, multiple=1):
    """(tile, starts): the fewest equal tiles of at most `max_tile` that cover `length` with at
    least `overlap` shared between neighbours, evenly spaced from the first sample to the last.
    Where `length` is a multiple of `multiple`, so is the tile (more overlap, never less)."""
    if length <= max_tile:
        return length, [0]
    evenly = length % multiple == 0 and max_tile // multiple * multiple > overlap
    if evenly:  # the tiles are counted at the largest multiple that fits, so rounding up stays within it
        max_tile = max_tile // multiple * multiple
    count = math.ceil((length - overlap) / (max_tile - overlap))
    tile = math.ceil((length + (count - 1) * overlap) / count)
    if evenly:
        tile = -(-tile // multiple) * multiple
    return tile, [round(i * (length - tile) / (count - 1)) for i in range(count)]


def space_plan(length, max_tile, overlap, multiple):
    """tile_plan over one side of a frame of `length` packed pixels, as a view pads it: up to a
    multiple of `multiple` (the network's)."""
    return tile_plan(views.padded_size(length, multiple), max_tile, overlap, multiple)


def time_plan(length, test_cfg):
    """(mirror, tile, starts) for a clip of `length` frames: the frames mirrored at each end, then
    tile_plan's windows over the extended clip."""
    mirror = min(test_cfg["mirror_frames"], length - 1)
    return (mirror, *tile_plan(length + 2 * mirror, test_cfg["tile_frames"], test_cfg["overlap_frames"]))


def view_count(test_cfg, length):
    """How many views each window of a `length`-frame clip is enhanced in: test.photo_self_ensemble
    for a photo (1 frame), whose views are passes of one frame, test.self_ensemble otherwise."""
    return test_cfg["photo_self_ensemble"] if length == 1 else test_cfg["self_ensemble"]


def ramp(length, overlap):
    """1D blending weight of a tile: rising over the first `overlap` samples, falling over the last,
    never zero (a border tile is the only one there, and its weight then cancels out)."""
    weight = np.ones(length, np.float32)
    rise = (np.arange(1, overlap + 1, dtype=np.float32) / (overlap + 1)) if overlap else np.ones(0, np.float32)
    n = min(overlap, length // 2)
    weight[:n] = rise[:n]
    weight[length - n:] = np.minimum(weight[length - n:], rise[:n][::-1])
    return weight


def network_calls(frames, height, width, test_cfg, multiple, compute_dtype="float32"):
    """(calls, shape): the network calls test.py's tiling makes on a clip, all of one input shape
    (frames, packed height, packed width), or of its transpose for a transposed view (the same
    work): every view of every window in time times every tile in space (memory_plan's size),
    each view mirrored up to a multiple of `multiple` packed pixels first."""
    _, tile, starts = time_plan(frames, test_cfg)
    _, tile_size = memory_plan(frames, height, width, test_cfg, multiple, compute_dtype)
    (tile_h, tops), (tile_w, lefts) = (space_plan(n, tile_size, test_cfg["overlap_size"], multiple) for n in (height, width))
    window_views = views.views(view_count(test_cfg, frames), tile)
    return len(window_views) * len(starts) * len(tops) * len(lefts), (tile, tile_h, tile_w)


def memory_plan(frames, height, width, test_cfg, multiple, compute_dtype):
    """(by_tiles, tile_size) that keep a clip of `frames` packed (height, width) frames within
    test.memory_gib, by the estimates above: window by window over whole frames where a window
    fits (a video then streams through), else tile by tile through the whole clip (a burst of
    large frames), with the tile shrunk until one tile's work fits."""
    budget, overlap = test_cfg["memory_gib"] * GIB, test_cfg["overlap_size"]
    _, window, _ = time_plan(frames, test_cfg)
    rgb_bytes = 4 * 3 * 4  # the float RGB of a packed pixel's 2x2 output pixels

    def tile_bytes(size):
        (tile_h, _), (tile_w, _) = (space_plan(n, size, overlap, multiple) for n in (height, width))
        return CALL_BYTES + window * tile_h * tile_w * (CALL_BYTES_PER_PIXEL[compute_dtype] + WINDOW_COPIES * rgb_bytes)

    size = test_cfg["tile_size"]
    if tile_bytes(size) + window * height * width * rgb_bytes * WINDOW_COPIES <= budget:
        return False, size
    while size - multiple > overlap and tile_bytes(size) > budget:
        size -= multiple
    return True, size


class TiledEnhancer:
    def __init__(self, model, test_cfg, photo=None):
        """`photo`: another TiledEnhancer, for 1-frame clips (a per-frame model trained for them)."""
        self.cfg, self.photo = test_cfg, photo
        self.multiple = network.size_multiple(model)
        # Keras' own compiled inference call on whichever backend runs it (tf.function on TensorFlow,
        # jax.jit on JAX), numpy in and out.
        self._run = model.predict_on_batch
        self.compute_dtype = model.dtype_policy.compute_dtype

    def enhance_window(self, packed):
        """(T, h, w, 4) float32 -> (T, 2h, 2w, 3) float32, blended over spatial tiles."""
        frames, height, width, _ = packed.shape
        size, overlap = self.cfg["tile_size"], self.cfg["overlap_size"]
        (tile_h, tops), (tile_w, lefts) = (tile_plan(n, size, overlap, self.multiple) for n in (height, width))
        if len(tops) == len(lefts) == 1:  # one tile: nothing to blend, and no passes over the frames
            return self._run(packed[None])[0]
        weight = (ramp(2 * tile_h, 2 * overlap)[:, None] * ramp(2 * tile_w, 2 * overlap)[None, :])[..., None]
        total = np.zeros((frames, 2 * height, 2 * width, 3), np.float32)
        weights = np.zeros((2 * height, 2 * width, 1), np.float32)
        for top in tops:
            for left in lefts:
                tile = packed[None, :, top:top + tile_h, left:left + tile_w]
                rgb = self._run(tile)[0]
                rows, cols = slice(2 * top, 2 * (top + tile_h)), slice(2 * left, 2 * (left + tile_w))
                total[:, rows, cols] += rgb * weight
                weights[rows, cols] += weight
        return total / weights

    def enhance(self, clip):
        """Yield (first frame index, uint8 RGB frames) chunks of the enhanced clip, in order."""
        if self.photo is not None and len(clip.packed_raw) == 1:
            return self.photo.enhance(clip)
        by_tiles, tile_size = memory_plan(*clip.packed_raw.shape[:3], self.cfg, self.multiple, self.compute_dtype)
        if by_tiles:
            return in_background(self._by_tiles(clip, tile_size))
        return in_background(steady(self._finish(clip)) if self.cfg["steady"] else self._finish(clip))

    def _finish(self, clip):
        with contextlib.closing(in_background(self._blend(clip))) as blended:
            for first, frames in blended:
                yield first, finish(*frames)

    def _blend(self, clip):
        """Yield (first frame index, float RGB frames, their input's linear light or None) chunks."""
        length, overlap = len(clip.packed_raw), self.cfg["overlap_frames"]
        mirror, tile, starts = time_plan(length, self.cfg)
        window_views = views.views(view_count(self.cfg, length), tile)
        inputs = in_background(item for start in starts for item in self._read(clip, start - mirror, start - mirror + tile, window_views))
        time_weight = ramp(tile, overlap)[:, None, None, None]
        view_weight = time_weight / len(window_views)  # times the views' sum: their mean, weighted
        carry_sum = carry_weight = None  # the blended tail that the next window overlaps
        with contextlib.closing(inputs):  # its thread stopped and joined when this stage stops
            for i, start in enumerate(starts):
                window_sum = None
                for view in window_views:
                    packed, linear, window_shape = next(inputs)
                    rgb = views.restore(self.enhance_window(packed), view, window_shape)
                    window_sum = rgb if window_sum is None else np.add(window_sum, rgb, out=window_sum)
                window_sum *= view_weight  # in place: a copy of the window costs more than the product
                window_weight = np.broadcast_to(time_weight, (tile, 1, 1, 1)).copy()
                if carry_sum is not None:
                    window_sum[:len(carry_sum)] += carry_sum
                    window_weight[:len(carry_weight)] += carry_weight
                done = (starts[i + 1] - start) if i + 1 < len(starts) else tile
                first, stop = max(start, mirror), min(start + done, mirror + length)  # the clip's own frames
                if first < stop:
                    own = slice(first - start, stop - start)
                    rgb = window_sum[own]
                    rgb /= window_weight[own]
                    yield first - mirror, (rgb, None if linear is None else linear[own])
                carry_sum, carry_weight = window_sum[done:], window_weight[done:]

    def _by_tiles(self, clip, tile_size):
        """enhance's chunks, one frame each, for a clip enhanced tile by tile: each tile (of at most
        `tile_size` packed pixels) through every window of the clip, as _blend does whole frames.
        The input is decoded once into a temporary file and the output gathered in another, so
        memory follows the tile, not the frame; no frame is done before the last tile."""
        length, height, width, _ = clip.packed_raw.shape
        overlap = self.cfg["overlap_size"]
        rows, cols = (TileAxis(n, *space_plan(n, tile_size, overlap, self.multiple), overlap) for n in (height, width))
        raw = DiskFrames(clip.packed_raw.shape, clip.packed_raw.dtype)
        for f in range(length):
            raw.write(f, data.read_frames(clip.packed_raw, f, f + 1))
        blend = TileBlend(DiskFrames((length, 2 * height, 2 * width, 3), np.uint8), rows, cols)
        tiles = [(a, b) for a in range(len(rows.spans)) for b in range(len(cols.spans))]
        for a, b in tqdm(tiles, desc=f"{clip.name}: tiles", unit="tile", leave=False, disable=None):
            crop = CroppedFrames(raw, rows.packed(a), cols.packed(b))
            # No linear light: the anchor needs whole frames, and takes them below.
            tile_clip = dataclasses.replace(clip, packed_raw=crop, linear=None, linear_to_input=None)
            for first, (rgb, _) in self._blend(tile_clip):
                blend.add(a, b, first, rgb)
            blend.tile_done(a, b)
        output = blend.output
        if self.cfg["anchor_colour"] and clip.linear is not None:
            for f in range(length):
                output.write(f, anchor_colour(output.read(f, f + 1), clip.linear(raw.read(f, f + 1))))
        if self.cfg["steady"]:
            steady_in_bands(output)
        for f in range(length):
            yield f, output.read(f, f + 1)

    def _read(self, clip, start, stop, window_views):
        """Frames [start, stop) of the clip, mirrored at its ends: for each of `window_views`, the
        network's input, the linear light that test.anchor_colour pins the output to (None without
        it) and the window's packed shape."""
        packed_raw = data.read_mirrored(clip.packed_raw, start, stop)
        linear = clip.linear(packed_raw) if self.cfg["anchor_colour"] and clip.linear is not None else None
        for view in window_views:
            shown = views.show(packed_raw, view, self.multiple)
            if shown is packed_raw and linear is not None:  # the window itself: its linear light is at hand
                yield clip.linear_to_input(linear), linear, packed_raw.shape
            else:
                yield clip.normalize(shown), linear, packed_raw.shape


class TileAxis:
    """One axis of a tile-by-tile plan, in output pixels: each tile's span (cut at the clip's edge),
    its blending weight there (the weights of the tiles over a pixel sum to 1), and the cells the
    tiles' edges cut the axis into, with the tiles over each."""

    def __init__(self, length, tile, starts, overlap):
        self.starts, self.tile, self.length = starts, tile, length
        self.spans = [(2 * start, min(2 * (start + tile), 2 * length)) for start in starts]
        ramps = [ramp(2 * tile, 2 * overlap)[:stop - start] for start, stop in self.spans]
        total = np.zeros(2 * length, np.float32)
        for (start, stop), weight in zip(self.spans, ramps):
            total[start:stop] += weight
        self.weights = [weight / total[start:stop] for (start, stop), weight in zip(self.spans, ramps)]
        edges = sorted({edge for span in self.spans for edge in span})
        self.cells = list(zip(edges[:-1], edges[1:]))
        self.covers = [[t for t, (start, stop) in enumerate(self.spans) if start <= a and b <= stop] for a, b in self.cells]

    def packed(self, t):
        """Tile t's packed pixels, cut at the clip's edge (a view mirrors them up to its size)."""
        return slice(self.starts[t], min(self.starts[t] + self.tile, self.length))

    def cells_of(self, t):
        return [c for c, tiles in enumerate(self.covers) if t in tiles]


class TileBlend:
    """Tiles' float RGB -> the uint8 frames of `output` (a DiskFrames), each cell of pixels written
    once the last tile over it is done. Cells under one tile are written as they come; only cells
    in an overlap still waiting for a tile are held, as float sums of the tiles' weighted output."""

    def __init__(self, output, rows, cols):
        self.output, self.rows, self.cols = output, rows, cols
        self.held, self.waiting = {}, {}

    def add(self, a, b, first, rgb):
        """Tile (a, b)'s output for frames [first, first + len(rgb)), in the tile's own pixels."""
        top, left = self.rows.spans[a][0], self.cols.spans[b][0]
        for i in self.rows.cells_of(a):
            for j in self.cols.cells_of(b):
                (r0, r1), (c0, c1) = self.rows.cells[i], self.cols.cells[j]
                part = rgb[:, r0 - top:r1 - top, c0 - left:c1 - left]
                covers = len(self.rows.covers[i]) * len(self.cols.covers[j])
                if covers == 1:  # its weight is 1
                    self.output.write(first, to_uint8(part), slice(r0, r1), slice(c0, c1))
                    continue
                weight = self.rows.weights[a][r0 - top:r1 - top, None, None] * self.cols.weights[b][None, c0 - left:c1 - left, None]
                if (i, j) not in self.held:
                    self.held[i, j] = np.zeros((self.output.shape[0], r1 - r0, c1 - c0, 3), np.float32)
                    self.waiting[i, j] = covers
                self.held[i, j][first:first + len(part)] += part * weight

    def tile_done(self, a, b):
        """Tile (a, b) has given all its frames: write the cells it was the last tile of."""
        for i in self.rows.cells_of(a):
            for j in self.cols.cells_of(b):
                if (i, j) in self.waiting:
                    self.waiting[i, j] -= 1
                    if not self.waiting[i, j]:
                        del self.waiting[i, j]
                        (r0, r1), (c0, c1) = self.rows.cells[i], self.cols.cells[j]
                        self.output.write(0, to_uint8(self.held.pop((i, j))), slice(r0, r1), slice(c0, c1))


class DiskFrames:
    """A (F, H, W, C) array in an unnamed temporary file (gone however the process ends), read and
    written through a map made for each access: pages touched through a lasting map would stay in
    this process's resident memory, which would then grow to the whole array."""

    def __init__(self, shape, dtype):
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.file = tempfile.TemporaryFile()
        size = self.dtype.itemsize * math.prod(self.shape)
        try:  # the space is taken now: a full disk stops here with a message, not later with SIGBUS
            os.posix_fallocate(self.file.fileno(), 0, size)
        except OSError as error:
            self.file.close()
            raise OSError(f"{tempfile.gettempdir()}: no room for {size / GIB:.1f} GiB of frames being enhanced "
                          f"({error.strerror}); free some, or set TMPDIR to a disk with room") from None

    def _map(self, start, stop):
        frame_bytes = self.dtype.itemsize * math.prod(self.shape[1:])
        return np.memmap(self.file, self.dtype, "r+", start * frame_bytes, (stop - start, *self.shape[1:]))

    def read(self, start, stop, rows=slice(None), cols=slice(None)):
        return np.array(self._map(start, stop)[:, rows, cols])

    def write(self, start, values, rows=slice(None), cols=slice(None)):
        self._map(start, start + len(values))[:, rows, cols] = values


class CroppedFrames:
    """DiskFrames cut to (rows, cols): to data.read_frames, a clip's packed_raw of that size."""

    def __init__(self, frames, rows, cols):
        self.frames, self.rows, self.cols = frames, rows, cols
        self.shape = (frames.shape[0], rows.stop - rows.start, cols.stop - cols.start, frames.shape[3])

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, frames):
        start, stop, _ = frames.indices(len(self))
        return self.frames.read(start, stop, self.rows, self.cols)


def finish(rgb, linear):
    """Float RGB frames -> the uint8 frames saved: anchored to `linear`, the input's linear light,
    where there is one (test.anchor_colour), else rounded as they are."""
    out = to_uint8(rgb)
    return out if linear is None else anchor_colour(out, linear)


def anchor_colour(out, linear):
    """uint8 RGB frames, each frame's colour and brightness brought (in place) in linear light to
    those of `linear` (the input's linear light, packed, at the target exposure), region by region
    (frame_gains). The input's means over a region are the scene's, its noise averaging out, while
    the network's output drifts in brightness and colour."""
    for f, frame in enumerate(out):
        frame_linear = cv2.LUT(frame, synthesis.LEVEL_TO_LINEAR[None])
        out_blocks = cv2.resize(frame_linear, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        gains = cv2.resize(frame_gains(out_blocks, linear[f]), frame.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        out[f] = LINEAR_TO_LEVEL[np.clip(frame_linear * gains * LINEAR_STEPS + 0.5, 0, LINEAR_STEPS).astype(np.uint16)]
    return out


def frame_gains(out_blocks, linear):
    """(cells high, cells wide, 3) gains that bring one output frame's linear light, as its 2x2
    blocks (H/2, W/2, 3), to its input's (H/2, W/2, 4 packed), cell by cell of ANCHOR_CELL blocks.

    - Means are taken over the blocks where the output is not near white (capped at 1 there, while
      the input, a lamp say, may be far above).
    - An input cell's channel below zero is taken as zero: its noise has averaged out, so what is
      left is a colour beyond sRGB's gamut (saturated stage light after the colour matrix), which
      the output cannot show either.
    - A cell takes its own gains as far as its input's mean is bright against its noise (the
      standard error of the mean, ANCHOR_TRUST of them for half trust), else the frame's: a
      brightness gain, and a tint per channel bounded to MAX_TINT.
    One unbounded gain per channel for the whole frame scaled the colours of every object that
    differs from a saturated light away with the light's."""
    brightest = np.maximum(np.maximum(out_blocks[..., 0], out_blocks[..., 1]), out_blocks[..., 2])  # max(axis=-1) is far slower
    keep = (brightest < NEAR_WHITE).astype(np.float32)[..., None]
    input_rgb = data.block_rgb(linear)
    kept = np.maximum(area_means(keep, ANCHOR_CELL), 1e-6)  # the share of each cell's blocks kept
    have = area_means(out_blocks * keep, ANCHOR_CELL) / kept
    signed = area_means(input_rgb * keep, ANCHOR_CELL) / kept
    spread = np.maximum(area_means(np.square(input_rgb) * keep, ANCHOR_CELL) / kept - np.square(signed), 0)
    want = np.maximum(signed, 0)
    blocks = kept * min(ANCHOR_CELL**2, keep.size)  # kept blocks a cell
    frame = frame_wide_gains((want * kept).reshape(-1, 3).sum(axis=0), (have * kept).reshape(-1, 3).sum(axis=0), kept.sum())
    own = np.where(have > MIN_MEAN, want / np.maximum(have, MIN_MEAN), frame)
    light, noise = want.sum(axis=-1, keepdims=True), np.sqrt(spread.sum(axis=-1, keepdims=True) / blocks)
    trust = np.square(light) / (np.square(light) + np.square(ANCHOR_TRUST * noise) + 1e-20)
    return (trust * own + (1 - trust) * frame).astype(np.float32)


def frame_wide_gains(want, have, kept):
    """(R, G, B) gains from a frame's sums of input and output light: one for brightness (the sum
    of the channels), times a tint per channel bounded to MAX_TINT either way; a channel with next
    to no light takes the brightness gain alone."""
    brightness = want.sum() / max(have.sum(), MIN_MEAN * max(kept, 1))
    enough = have > MIN_MEAN * max(kept, 1)
    tint = np.where(enough, want / np.where(enough, have, 1) / max(brightness, 1e-12), 1.0)
    return brightness * np.clip(tint, 1 / MAX_TINT, MAX_TINT)


def steady(chunks, ahead=STEADY_AHEAD):
    """(first, uint8 frames) chunks of a clip -> the same clip, each frame the mean of two running
    averages of it (steady_step), one forward in time and one backward, the backward one started
    2 x `ahead` frames on at most: where the picture stands still the network's residual noise, which
    changes every frame, is averaged out, and where it moves each frame is kept. The output lags the
    input by up to 2 x `ahead` frames."""
    frames, forwards, forward, done = [], [], None, 0
    try:
        for _, chunk in chunks:
            for frame in chunk:
                forward = steady_step(forward, frame)
                frames.append(frame)
                forwards.append(forward)
                if len(frames) == 2 * ahead:
                    yield done, both_ways(frames, forwards, ahead)
                    done += ahead
                    del frames[:ahead], forwards[:ahead]
    finally:
        if hasattr(chunks, "close"):  # the stage before, stopped with this one (in_background)
            chunks.close()
    if frames:
        yield done, both_ways(frames, forwards, len(frames))


def steady_row_bytes(length, width):
    """The memory steady_in_bands works in for each row of a band of a `length`-frame clip: the
    band, the next one and the result as uint8, and steady's float averages and steps."""
    return width * 3 * (3 * length + 4 * (2 * STEADY_AHEAD + 6))


def steady_in_bands(frames, band_bytes=STEADY_BAND_BYTES):
    """steady over a whole clip in a DiskFrames, in place, a band of rows at a time (about
    `band_bytes` of work, steady_row_bytes a row), each read with a margin of rows above and below
    before the band above it is written back. A pixel's gate sees its box's rows, whose averages
    saw theirs, and so on back in time: a margin of two boxes leaves those rows within a level of
    the whole frame."""
    length, height, width, _ = frames.shape
    margin, rows = 2 * STEADY_BOX, max(1, band_bytes // steady_row_bytes(length, width))
    tops = list(range(0, height, rows))

    def read(top):
        return frames.read(0, length, slice(max(top - margin, 0), min(top + rows + margin, height)))

    following = read(tops[0])
    for i, top in enumerate(tops):
        band, following = following, read(tops[i + 1]) if i + 1 < len(tops) else None
        steadied = np.concatenate([chunk for _, chunk in steady([(0, band)])])
        inside = top - max(top - margin, 0)
        frames.write(0, steadied[:, inside:inside + min(rows, height - top)], slice(top, top + rows))


def both_ways(frames, forwards, count):
    """The first `count` of `frames` as uint8: each the mean of its forward average and the
    backward one, run from the last of `frames`."""
    backward, out = None, [None] * count
    for i in reversed(range(len(frames))):
        backward = steady_step(backward, frames[i])
        if i < count:
            out[i] = to_uint8((forwards[i] + backward) / 510)  # the mean of two, levels -> [0, 1]
    return np.stack(out)


def steady_step(average, frame):
    """The running average (float levels, or None to start) after one more uint8 frame: the frame
    enters it fully where it differs like motion and by STEADY_MIN_GAIN where like noise."""
    frame = frame.astype(np.float32)
    if average is None:
        return frame
    change = frame - average
    local = cv2.blur(np.abs(change).mean(axis=-1), (STEADY_BOX, STEADY_BOX))
    low, high = STEADY_LEVELS
    motion = np.clip((local - low) / (high - low), 0, 1)[..., None]
    return average + (STEADY_MIN_GAIN + (1 - STEADY_MIN_GAIN) * motion) * change


def in_background(items, ahead=1):
    """Iterate `items` in a thread of its own, at most `ahead` items before the consumer; an error
    there is raised here. If the consumer stops early (an error, Ctrl-C, a kill), the thread stops
    at its next item and closes `items`, and the consumer waits for it: no thread may still be
    inside TensorFlow while the interpreter shuts down, which can abort the process."""
    handoff, stop, end = queue.Queue(maxsize=ahead), threading.Event(), object()

    def offer(entry):
        """Hand `entry` over unless the consumer has stopped; whether it was."""
        while not stop.is_set():
            try:
                handoff.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in items:
                if not offer((item, None)):
                    return
            offer((end, None))
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, who raises it
            offer((end, error))
        finally:
            if hasattr(items, "close"):  # a generator: its own clean-up, and its stages', runs now
                items.close()

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item, error = handoff.get()
            if item is end:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join()
