"""Reading the dataset, shared by train and test: validated memory-mapped clips, file lists, and
the two input normalisations (`he`, `linear`). Training crops are in crops.py.

A clip is a pair of npy files with the same name:
    input        INPUT_DIR/NAME.npy  (F, H/2, W/2, 4) uint16, packed Bayer in config.CFA order
    ground truth GT_DIR/NAME.npy     (F, H, W, 3) uint8 RGB
and, optionally, a sidecar INPUT_DIR/NAME.json with the camera's black and white level, CFA,
exposure ratio, frame rate, as-shot white balance and colour matrix.
"""
import difflib
import json
import mmap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

import config

# The sidecar's keys that data.py and test.py read, and synthesis.py's own record of its draws.
SIDECAR_KEYS = ("black_level", "white_level", "cfa", "ratio", "fps", "wb_gains", "ccm",
                "source", "simulation", "scene")
# Other names a sidecar written by hand, or from rawpy's attributes, may give a key: kept as notes,
# they would silently drop the white balance, the colour matrix or the frame rate.
SIDECAR_SYNONYMS = {"camera_whitebalance": "wb_gains", "white_balance": "wb_gains", "color_matrix": "ccm",
                    "colour_matrix": "ccm", "black_level_per_channel": "black_level", "raw_pattern": "cfa",
                    "frame_rate": "fps", "framerate": "fps", "exposure_ratio": "ratio"}
HE_BINS = 65536  # the original's histogram equalisation: 2**16 bins from the clip's min to max
MIN_CCM_DETERMINANT = 1e-6  # below it a sidecar's colour matrix is taken as singular
# data.ratio=auto: the exposure that brings this percentile of a clip's brightness (its linear light,
# downscaled AUTO_SCALE times so that the noise averages out) to AUTO_TARGET, over at most
# AUTO_FRAMES frames spread across the clip: one ratio for the clip, so that it does not flicker.
# AUTO_TARGET is the median of that percentile in the training list's clips at their true ratio
# (python -m lab.generalisation --auto-ratio measures it; see docs/testing.md).
AUTO_PERCENTILE, AUTO_SCALE, AUTO_FRAMES, AUTO_TARGET = 99.0, 4, 8, 0.53


def packed_from_mosaic(raw):
    """(..., H, W) Bayer mosaic -> (..., H/2, W/2, 4): channel k is pixel (k // 2, k % 2) of each block."""
    return np.stack([raw[..., row::2, col::2] for row, col in ((0, 0), (0, 1), (1, 0), (1, 1))], axis=-1)


def mosaic_from_packed(packed):
    """(..., h, w, 4) -> (..., 2h, 2w): the inverse of packed_from_mosaic."""
    *lead, h, w, _ = packed.shape
    blocks = packed.reshape(*lead, h, w, 2, 2)
    axes = tuple(range(len(lead)))
    return blocks.transpose(*axes, len(lead), len(lead) + 2, len(lead) + 1, len(lead) + 3).reshape(*lead, 2 * h, 2 * w)


def channel_index(letter):
    """Packed channels that hold colour `letter` ('R', 'G' or 'B')."""
    return [k for k, c in enumerate(config.CFA) if c == letter]


# ---------------------------------------------------------------------------------------------
# Files -> validated arrays


def check_name(name, where):
    """A clip's NAME (from a list, a folder or a sidecar) names its outputs, so it must be a plain
    file name: no path separator, no `..`, no leading `.` (temporary and hidden files) and no
    whitespace (the lists are space-separated). Else `../../0_data/gt_he/x` would write outside the
    results folder, over a ground truth."""
    if not name or name.startswith(".") or any(c in name for c in "/\\") or len(name.split()) != 1 or "\0" in name:
        raise ValueError(f"{where}: clip name {name!r} must be a plain file name (no path separator, no spaces, "
                         "not starting with '.')")
    return name


def clip_files(folder):
    """The .npy files of a folder, sorted, without hidden and temporary ones (`.tmpPID.NAME.npy`,
    left by a killed run)."""
    return sorted(p for p in Path(folder).glob("*.npy") if not p.name.startswith("."))


def load_npy(path, dtype, what):
    """Memory-map an npy file (never pickles) and check its dtype; errors name the file."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise ValueError(f"{path}: not a regular file ({what}): a folder or a device")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file ({what})")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"{path}: not a readable .npy file ({error})") from None
    if (array.dtype.kind, array.dtype.itemsize) != (np.dtype(dtype).kind, np.dtype(dtype).itemsize):
        raise ValueError(f"{path}: {what} must be {np.dtype(dtype).name}, got {array.dtype.name}")
    return array


def mirrored_index(start, stop, length):
    """The frame numbers of frames [start, stop) of a clip of `length` frames mirrored about its
    first and last frame: frame -k is frame k, frame length - 1 + k is frame length - 1 - k (for
    k < length). How test.py extends a clip's ends, and how training's end crops see them."""
    index = np.abs(np.arange(start, stop))
    return np.where(index >= length, 2 * (length - 1) - index, index)


def read_mirrored(array, start, stop):
    """Frames [start, stop) of a clip, mirrored at its ends (mirrored_index), read as read_frames does."""
    index = mirrored_index(start, stop, len(array))
    first = index.min()
    return read_frames(array, first, index.max() + 1)[index - first]


def read_frames(array, start, stop):
    """Frames [start, stop) of a clip array as an ordinary in-memory array. A memory-mapped npy is
    read with plain file reads: pages touched through the map would stay in this process's
    resident memory, which would then grow with the length of a streamed clip."""
    whole_file = isinstance(array, np.memmap) and isinstance(array.base, mmap.mmap)  # a slice keeps the file's offset
    if not whole_file or not array.flags.c_contiguous:  # e.g. saved in Fortran order
        return np.ascontiguousarray(array[start:stop])
    start, stop, _ = slice(start, stop).indices(len(array))
    frame_shape = array.shape[1:]
    frame_bytes = array.dtype.itemsize * int(np.prod(frame_shape))
    frames = np.fromfile(array.filename, array.dtype, (stop - start) * int(np.prod(frame_shape)),
                         offset=array.offset + start * frame_bytes)
    return frames.reshape(stop - start, *frame_shape)


def load_packed_raw(path):
    packed_raw = load_npy(path, np.uint16, "packed Bayer input")
    if packed_raw.ndim != 4 or packed_raw.shape[-1] != 4 or 0 in packed_raw.shape:
        raise ValueError(f"{path}: packed Bayer input must have shape (frames, H/2, W/2, 4), "
                         f"got {packed_raw.shape}")
    return packed_raw


def load_gt_rgb(path, packed_shape, input_path):
    gt_rgb = load_npy(path, np.uint8, "ground truth RGB")
    frames, height, width, _ = packed_shape
    if gt_rgb.shape != (frames, 2 * height, 2 * width, 3):
        raise ValueError(f"{path}: ground truth must be (frames, 2 x packed height, 2 x packed width, 3) = "
                         f"{(frames, 2 * height, 2 * width, 3)} to match {input_path}, got {gt_rgb.shape}")
    return gt_rgb


def sidecar_path(input_path):
    return Path(input_path).with_suffix(".json")


def load_sidecar(input_path):
    """The clip's sidecar as a dict, or None when there is none."""
    path = sidecar_path(input_path)
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    for key in meta.keys() - set(SIDECAR_KEYS):  # other keys are the user's own notes; a near miss is a typo
        meant = SIDECAR_SYNONYMS.get(key) or next(iter(difflib.get_close_matches(key, SIDECAR_KEYS, n=1, cutoff=0.8)), None)
        if meant:
            raise ValueError(f"{path}: unknown key {key!r}: did you mean {meant!r}?")
    if "cfa" in meta and meta["cfa"] != config.CFA:
        raise ValueError(f"{path}: the packed input must be in {config.CFA} order, the sidecar says {meta['cfa']!r}")
    if "fps" in meta:  # checked here, whatever the normalisation: the mp4's frame rate is made of it
        fps = sidecar_numbers(meta, "fps", [()], path, positive=True)
        if not config.FPS_RANGE[0] <= fps <= config.FPS_RANGE[1]:
            raise ValueError(f"{path}: fps must be between {config.FPS_RANGE[0]} and {config.FPS_RANGE[1]} frames a second "
                             f"(players cannot show others), got {meta['fps']!r}")
    return meta


# ---------------------------------------------------------------------------------------------
# Input normalisations: uint16 packed frames -> float32 in [0, 1]


def he_lut(packed_raw, chunk_frames=16):
    """The original's global histogram equalisation of a whole clip as a lookup table.

    Same result as np.histogram(clip, 65536 bins from min to max) -> cdf scaled to 65535 ->
    np.interp(clip, bin_lefts, cdf) / 65535, but from a streamed count of the uint16 values,
    so the clip is never held in memory as floats."""
    counts = np.zeros(65536, np.int64)
    for start in range(0, len(packed_raw), chunk_frames):
        counts += np.bincount(np.asarray(packed_raw[start:start + chunk_frames]).ravel(), minlength=65536)
    present = np.flatnonzero(counts)
    low, high = present[0], present[-1]
    values = np.arange(low, high + 1)
    hist, edges = np.histogram(values, HE_BINS, range=(low, high), weights=counts[low:high + 1])
    cdf = np.cumsum(hist, dtype=np.float64)
    cdf = (HE_BINS - 1) * cdf / cdf[-1]
    lut = np.interp(np.arange(65536), edges[:-1], cdf) / 65535.0
    return np.minimum(lut, 1.0).astype(np.float32)


def linear_params(meta, data_cfg, where):
    """Per-packed-channel offset and gain, and the colour matrix, of the `linear` mode."""
    missing = [key for key in ("black_level", "white_level") if meta is None or key not in meta]
    ratio = data_cfg["ratio"] if data_cfg["ratio"] is not None else (meta or {}).get("ratio")
    if missing or ratio is None:
        needs = missing + ([] if ratio is not None else ["ratio (or --ratio R, data.ratio=R or data.ratio=auto)"])
        raise ValueError(f"{where}: linear normalisation needs {', '.join(needs)} from the sidecar {sidecar_path(where)}")
    sidecar = sidecar_path(where)
    black = np.broadcast_to(sidecar_numbers(meta, "black_level", [(), (4,)], sidecar), (4,))
    white = sidecar_numbers(meta, "white_level", [()], sidecar)
    container = np.iinfo(np.uint16).max  # the packed input's
    if not (black.min() >= 0 and black.max() < white <= container):
        raise ValueError(f"{sidecar}: levels must satisfy 0 <= black_level < white_level <= {container} (the uint16 "
                         f"container), got black_level {black.tolist()} and white_level {float(white)}")
    if data_cfg["ratio"] is None:
        ratio = sidecar_numbers(meta, "ratio", [()], sidecar, positive=True)
    wb = sidecar_numbers({"wb_gains": [1.0, 1.0, 1.0], **meta}, "wb_gains", [(3,)], sidecar, positive=True)
    gains = np.array([dict(zip("RGB", wb))[c] for c in config.CFA], np.float32) * ratio / (white - black)
    ccm = sidecar_numbers(meta, "ccm", [(3, 3)], sidecar) if data_cfg["apply_ccm"] and "ccm" in meta else None
    if ccm is not None and not abs(np.linalg.det(ccm.astype(np.float64))) > MIN_CCM_DETERMINANT:
        raise ValueError(f"{sidecar}: ccm {ccm.tolist()} is singular (it would map colours to black or to a line); "
                         "a camera's colour matrix is invertible, its rows summing to about 1")
    return black, gains, ccm


def sidecar_numbers(meta, key, shapes, sidecar, positive=False):
    """meta[key] as float32 of one of `shapes`, finite (and positive): else an error naming the file.
    JSON numbers only: `true` or "256" would be read as 1 and 256 by numpy."""
    value = meta[key]
    try:
        array = np.asarray(value, np.float32) if np.asarray(value).dtype.kind in "iuf" else None
    except (TypeError, ValueError):
        array = None
    if array is None or array.shape not in shapes or not np.isfinite(array).all() or (positive and not (array > 0).all()):
        shape = " or ".join("one number" if s == () else "x".join(map(str, s)) + " numbers" for s in shapes)
        raise ValueError(f"{sidecar}: {key} must be {shape}, finite{' and positive' if positive else ''}, got {value!r}")
    return array


def block_rgb(packed):
    """(..., 4) packed Bayer -> (..., 3): each 2x2 block's R, mean G and B."""
    return np.stack([packed[..., channel_index("R")[0]], packed[..., channel_index("G")].mean(axis=-1),
                     packed[..., channel_index("B")[0]]], axis=-1)


def packed_colour_matrix(ccm):
    """The 4x4 matrix that colour-corrects packed Bayer per 2x2 block: (R, mean G, B) -> ccm @ rgb,
    and both greens move by the change of their mean, so the detail between them survives."""
    to_rgb = np.zeros((3, 4), np.float32)  # packed -> (R, mean G, B)
    for row, letter in enumerate("RGB"):
        to_rgb[row, channel_index(letter)] = 1 / len(channel_index(letter))
    to_packed = (to_rgb > 0).T.astype(np.float32)  # a change of (R, G, B) -> every packed channel of that colour
    return np.eye(4, dtype=np.float32) + to_packed @ (np.asarray(ccm, np.float32) - np.eye(3, dtype=np.float32)) @ to_rgb


def make_linear(meta, data_cfg, where):
    """A function from uint16 packed frames of this clip to linear sRGB at the target exposure,
    neither floored nor capped: black subtracted, white balanced, times the ratio, colour corrected.
    Its noise averages out, so its means are the scene's."""
    black, gains, ccm = linear_params(meta, data_cfg, where)
    colour = np.eye(4, dtype=np.float32) if ccm is None else packed_colour_matrix(ccm)
    scale = colour * gains  # colour @ diag(gains)
    # All of it is one affine map per pixel, applied by cv2.transform in one pass over the frames
    # instead of numpy's several: at inference it runs on the cores the network needs.
    affine = np.concatenate([scale, -(scale @ black)[:, None]], axis=1)

    def linear(frames):
        return cv2.transform(frames.astype(np.float32).reshape(-1, 1, 4), affine).reshape(frames.shape)
    return linear


def clip_brightness_percentile(packed_raw, meta, data_cfg, where, percentile=AUTO_PERCENTILE):
    """The `percentile` of a clip's luminance in linear light at exposure ratio 1 (black subtracted,
    white balanced, colour corrected), downscaled AUTO_SCALE times, over up to AUTO_FRAMES frames."""
    linear = make_linear({**(meta or {}), "ratio": 1.0}, {**data_cfg, "ratio": None}, where)
    picks = np.unique(np.linspace(0, len(packed_raw) - 1, min(AUTO_FRAMES, len(packed_raw))).astype(int))
    luminance = []
    for index in picks:
        rgb = block_rgb(linear(np.asarray(packed_raw[index:index + 1])[0]))
        height, width = rgb.shape[:2]
        size = (max(1, width // AUTO_SCALE), max(1, height // AUTO_SCALE))
        luminance.append(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA).reshape(-1, 3) @ np.float32(config.LUMA))
    return float(np.percentile(np.concatenate(luminance), percentile))


def auto_ratio(packed_raw, meta, data_cfg, where):
    """data.ratio=auto: the exposure ratio that brings the clip's bright end to AUTO_TARGET."""
    level = clip_brightness_percentile(packed_raw, meta, data_cfg, where)
    if not level > 0:
        raise ValueError(f"{where}: the frames hold no light above the black level, so no exposure ratio "
                         "can be chosen from them: give one with --ratio (or data.ratio)")
    return AUTO_TARGET / level


def make_normalizer(packed_raw, meta, data_cfg, where):
    """A function from uint16 packed frames of this clip to float32 network input: [0, 1] for `he`,
    at most 1 and, unless data.clip_negative, signed below 0 for `linear`."""
    return make_clip(where, packed_raw, None, meta, data_cfg, where).normalize


def make_linear_to_input(data_cfg):
    """Linear light -> the `linear` network input: capped at 1 (as saturated pixels are), and floored
    at 0 only with data.clip_negative."""
    floor = 0.0 if data_cfg["clip_negative"] else -np.inf
    return lambda linear: np.clip(linear, floor, 1.0)


# ---------------------------------------------------------------------------------------------
# Clips and file lists


@dataclass
class Clip:
    name: str
    packed_raw: np.ndarray  # memory-mapped (F, H/2, W/2, 4) uint16
    gt_rgb: np.ndarray | None  # memory-mapped (F, H, W, 3) uint8, None without ground truth
    meta: dict | None  # the sidecar
    normalize: Callable[[np.ndarray], np.ndarray]  # uint16 frames -> float32 input in [0, 1]
    linear: Callable[[np.ndarray], np.ndarray] | None = None  # make_linear's; None for `he` input
    # make_linear_to_input's: normalize(frames) is linear_to_input(linear(frames)), for a reader that
    # needs both without computing the linear light twice. None for `he` input.
    linear_to_input: Callable[[np.ndarray], np.ndarray] | None = None

    @property
    def fps(self):
        """The frame rate from the sidecar, or None."""
        fps = (self.meta or {}).get("fps")
        return None if fps is None else float(fps)


def open_clip(input_path, gt_path, data_cfg, name=None):
    """Validate and memory-map one clip; `gt_path` may be None (or the input path: no ground truth)."""
    packed_raw = load_packed_raw(input_path)
    has_gt = gt_path is not None and Path(gt_path) != Path(input_path)
    gt_rgb = load_gt_rgb(gt_path, packed_raw.shape, input_path) if has_gt else None
    name = check_name(name or Path(input_path).stem, input_path)
    return make_clip(name, packed_raw, gt_rgb, load_sidecar(input_path), data_cfg, input_path)


def make_clip(name, packed_raw, gt_rgb, meta, data_cfg, where):
    """A Clip whose input is normalised as data_cfg says, with its linear light where it has one."""
    if data_cfg["normalization"] == "he":
        lut = he_lut(packed_raw)
        return Clip(name, packed_raw, gt_rgb, meta, lambda frames: lut[frames])
    if data_cfg["ratio"] == "auto":
        meta = {**(meta or {}), "ratio": auto_ratio(packed_raw, meta, data_cfg, where)}
        data_cfg = {**data_cfg, "ratio": None}
        print(f"{name}: exposure ratio {meta['ratio']:.1f}, chosen from its frames (data.ratio=auto)")
    linear, to_input = make_linear(meta, data_cfg, where), make_linear_to_input(data_cfg)
    return Clip(name, packed_raw, gt_rgb, meta, lambda frames: to_input(linear(frames)), linear, to_input)


def read_file_list(path):
    """Lines `NAME GT_PATH INPUT_PATH` -> list of (name, gt_path, input_path)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file list (run generate_file_list.py first)")
    entries, lines = [], {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            fields = line.split()
            if len(fields) != 3:
                raise ValueError(f"{path}:{number}: expected 'NAME GT_PATH INPUT_PATH', got {line!r}")
            name = check_name(fields[0], f"{path}:{number}")
            if name in lines:  # its outputs would replace the first one's
                raise ValueError(f"{path}:{number}: clip name {name!r} is already on line {lines[name]}; each clip needs its own name")
            lines[name] = number
            entries.append(tuple(fields))
    return entries


def open_list(path, data_cfg):
    return [open_clip(input_path, gt_path, data_cfg, name) for name, gt_path, input_path in read_file_list(path)]
