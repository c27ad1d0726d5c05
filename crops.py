"""Training and validation crops of a clip, with Bayer-preserving augmentation.

A crop is a (packed float32 (T, s, s, 4), ground truth float32 (T, 2s, 2s, 3)) pair cut from the
memory-mapped clip. Flips and the transpose follow Liu et al. (CVPRW 2019): the mosaic is flipped
with its ground truth, then both are cut one pixel in where needed so the mosaic reads GBRG again.
"""
from pathlib import Path

import numpy as np

import config
from data import mirrored_index, mosaic_from_packed, open_list, packed_from_mosaic


def cfa_codes(height, width):
    """The colour letter ('R', 'G', 'B') at every raw pixel of a crop, as a uint8 map."""
    tile = np.array([[ord(config.CFA[0]), ord(config.CFA[1])], [ord(config.CFA[2]), ord(config.CFA[3])]], np.uint8)
    return np.tile(tile, (height // 2, width // 2))


def cfa_phase(codes):
    """The (dy, dx) in {0, 1}^2 at which a transformed CFA map reads config.CFA again."""
    wanted = cfa_codes(2, 2)
    for dy in (0, 1):
        for dx in (0, 1):
            if np.array_equal(codes[dy:dy + 2, dx:dx + 2], wanted):
                return dy, dx
    raise AssertionError("a flip or transpose of a Bayer mosaic always has a GBRG phase")


def flip_margin(spatial_flips):
    """Packed blocks a crop needs beyond its size when it may be flipped in space: one, so that the
    flipped mosaic can be cut again at the GBRG phase."""
    return 1 if spatial_flips else 0


def crop_pair(clip, start, top, left, frames, size, flips=(False, False, False, False)):
    """A (packed float32 (T, s, s, 4), gt float32 (T, 2s, 2s, 3) or None) training pair.

    `flips` = (time, vertical, horizontal, transpose). Spatial flips are Bayer-preserving (Liu et
    al., CVPRW 2019): the mosaic and the ground truth are cut one block larger, flipped together,
    then both are cropped one pixel in where needed so that the mosaic reads GBRG again. Without a
    flip, the crop is exactly packed [top, top + s) x [left, left + s). Frames before the clip's
    first or past its last are mirrored, as test.py extends a clip's ends (data.mirrored_index)."""
    flip_t, flip_v, flip_h, transpose = flips
    margin = flip_margin(flip_v or flip_h or transpose)
    time = mirrored_index(start, start + frames, len(clip.packed_raw))
    block = time, slice(top, top + size + margin), slice(left, left + size + margin)
    raw = mosaic_from_packed(np.asarray(clip.packed_raw[block]))
    codes = cfa_codes(*raw.shape[1:])
    gt = None
    if clip.gt_rgb is not None:
        gt = np.asarray(clip.gt_rgb[block[0], 2 * top:2 * (top + size + margin), 2 * left:2 * (left + size + margin)])
    arrays = [raw, codes[None], gt]
    for flip, axis in ((flip_t, 0), (flip_v, 1), (flip_h, 2)):
        if flip:
            arrays = [None if a is None else np.flip(a, axis) for a in arrays]
    if transpose:
        arrays = [None if a is None else np.swapaxes(a, 1, 2) for a in arrays]
    raw, codes, gt = arrays
    dy, dx = cfa_phase(codes[0])
    window = (slice(None), slice(dy, dy + 2 * size), slice(dx, dx + 2 * size))
    packed = clip.normalize(packed_from_mosaic(raw[window]))
    return packed, None if gt is None else np.divide(gt[window], np.float32(255), dtype=np.float32)  # one pass


def random_crop_pair(clip, start, rng, train_cfg, mirror_frames):
    """A random crop of train.crop_frames frames from `start`, randomly flipped with train.augment.
    With train.still_probability it is one frame of them repeated instead (a photo, as the network
    sees it with replicated time padding); with train.end_probability, the clip's first frames
    after up to `mirror_frames` mirrored ones, as test.py extends a clip's ends (a time flip makes
    them the last frames)."""
    frames, size = train_cfg["crop_frames"], train_cfg["crop_size"]
    flips = tuple(rng.random(4) < 0.5) if train_cfg["augment"] else (False,) * 4
    kind = rng.random()
    still = kind < train_cfg["still_probability"]
    end = not still and kind < train_cfg["still_probability"] + train_cfg["end_probability"]
    margin = flip_margin(any(flips[1:]))
    _, height, width, _ = clip.packed_raw.shape
    top = int(rng.integers(0, height - size - margin + 1))
    left = int(rng.integers(0, width - size - margin + 1))
    if end:  # the first frame lies in the crop, after 0 .. mirror_frames mirrored ones
        start = -int(rng.integers(min(mirror_frames, frames - 1, len(clip.packed_raw) - 1) + 1))
    if not still:
        return crop_pair(clip, start, top, left, frames, size, flips)
    packed, gt_rgb = crop_pair(clip, start + int(rng.integers(frames)), top, left, 1, size, flips)
    return np.repeat(packed, frames, axis=0), None if gt_rgb is None else np.repeat(gt_rgb, frames, axis=0)


def centre_crop_pair(clip, frames, size):
    """The fixed, deterministic crop used for validation: the first frames, centred."""
    _, height, width, _ = clip.packed_raw.shape
    return crop_pair(clip, 0, (height - size) // 2, (width - size) // 2, frames, size)


def check_crop_fits(clips, frames, size, augment, where):
    """Stop before any work when a crop is larger than a video."""
    margin = flip_margin(augment)
    for clip in clips:
        count, height, width, _ = clip.packed_raw.shape
        if count < frames or min(height, width) < size + margin:
            raise ValueError(f"{where}: clip {clip.name} is {count} frames of {height}x{width} packed pixels, "
                             f"smaller than the crop of {frames} frames of {size + margin}x{size + margin}"
                             + (" (the crop plus one block for Bayer-preserving flips)" if margin else ""))


class SamplePlan:
    """Which crops an epoch visits: start frames 0, stride, 2 * stride, ... (each plus a random
    0 .. jitter-1) of every training video, shuffled; with train.steps_per_epoch, as many crops as
    those steps take, going round the shuffled plan. The plan, and every crop's augmentation,
    depend only on the seed and the epoch number, so a resumed run sees the same crops as an
    uninterrupted one. `epoch` is set by the callbacks.EpochTracker callback before each epoch begins."""

    def __init__(self, clips, train_cfg, seed):
        frames, stride, jitter = train_cfg["crop_frames"], train_cfg["start_stride"], train_cfg["start_jitter"]
        self.seed, self.epoch = seed, 0
        self.samples = []  # (clip index, first start frame, how many later frames it may move)
        for index, clip in enumerate(clips):
            spare = len(clip.packed_raw) - frames
            last_start = max(spare - (jitter - 1), 0)
            self.samples += [(index, start, min(jitter, spare - start + 1)) for start in range(0, last_start + 1, stride)]
        batch, steps = train_cfg["batch_size"], train_cfg["steps_per_epoch"]
        self.per_epoch = steps * batch if steps else len(self.samples) - len(self.samples) % batch
        if self.per_epoch == 0:
            raise ValueError(f"train.batch_size {batch} is larger than the {len(self.samples)} crops an epoch has "
                             "(set train.steps_per_epoch to go round them)")

    def __call__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        rounds = -(-self.per_epoch // len(self.samples))
        order = np.concatenate([rng.permutation(len(self.samples)) for _ in range(rounds)])
        for position in order[:self.per_epoch]:
            index, start, jitter = self.samples[position]
            yield index, start + rng.integers(jitter), rng.integers(2**62)


def validation_arrays(clips, train_cfg):
    """One fixed crop per validation video: the first frames, centred."""
    pairs = [centre_crop_pair(clip, train_cfg["crop_frames"], train_cfg["crop_size"]) for clip in clips]
    return np.stack([p for p, _ in pairs]), np.stack([g for _, g in pairs])


def training_clips(cfg):
    """The clips of file_list and valid_list in data.lists_dir, checked to hold a crop each."""
    train_cfg, lists_dir = cfg["train"], Path(cfg["data"]["lists_dir"])
    train_clips = open_list(lists_dir / "file_list", cfg["data"])
    valid_clips = open_list(lists_dir / "valid_list", cfg["data"])
    if not train_clips or not valid_clips:
        raise ValueError(f"{lists_dir}: file_list and valid_list need at least one clip each")
    check_crop_fits(train_clips, train_cfg["crop_frames"], train_cfg["crop_size"], train_cfg["augment"], "file_list")
    check_crop_fits(valid_clips, train_cfg["crop_frames"], train_cfg["crop_size"], False, "valid_list")
    return train_clips, valid_clips
