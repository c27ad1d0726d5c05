"""A folder of camera raw frames (DNG, and every format rawpy / LibRaw reads) as a packed clip.

Each frame's black level (per channel), white level, CFA, as-shot white balance and colour matrix
come from its own metadata. The colour matrix (camera RGB -> linear sRGB) is LibRaw's
`color_matrix` where it has one; for many cameras that is all zeros, and it is then derived from
the camera's XYZ -> camera matrix `rgb_xyz_matrix` as dcraw does (`ccm_from_xyz`). Any Bayer
layout (RGGB, BGGR, GRBG, GBRG) is brought to the packed GBRG convention by cropping one row
and/or column, so the network always sees the colours where it learnt them. Frames are read one
window at a time, never all at once.
"""
from datetime import datetime
from pathlib import Path

import numpy as np
import rawpy
from tqdm import tqdm

import config
from data import packed_from_mosaic




def _open(path):
    try:
        return rawpy.imread(str(path))
    except (rawpy.LibRawError, OSError) as error:
        raise ValueError(f"{path}: rawpy cannot read it as a camera raw file ({error})") from None


def ccm_from_xyz(cam_xyz):
    """Camera RGB -> linear sRGB from an XYZ -> camera matrix (the dcraw / Adobe convention):
    cam_rgb = cam_xyz @ srgb_to_xyz, each row normalised to sum 1 (white stays white after white
    balance), inverted."""
    cam_rgb = np.asarray(cam_xyz, np.float64)[:3, :3] @ np.asarray(config.SRGB_TO_XYZ)
    cam_rgb /= cam_rgb.sum(axis=1, keepdims=True)
    return np.linalg.inv(cam_rgb)


def frame_layout(raw, path):
    """(row, column) offset at which this frame's CFA reads config.CFA, and the four packed
    channels' indices into its per-colour metadata."""
    pattern = raw.raw_pattern
    if pattern is None or pattern.shape != (2, 2) or raw.num_colors != 3:
        kind = "X-Trans (6x6 CFA)" if pattern is not None and pattern.shape == (6, 6) else "not a 2x2 Bayer CFA"
        raise ValueError(f"{path}: the sensor is {kind}; the network needs a Bayer sensor (RGGB, BGGR, GRBG or GBRG)")
    letters = raw.color_desc.decode()
    for dy in (0, 1):
        for dx in (0, 1):
            shifted = [pattern[(k // 2 + dy) % 2, (k % 2 + dx) % 2] for k in range(4)]
            if "".join(letters[i] for i in shifted) == config.CFA:
                return (dy, dx), shifted
    raise ValueError(f"{path}: unsupported colour filter {letters} in pattern {pattern.tolist()}")


def frame_meta(raw, path):
    """The sidecar-like description of one frame: what every frame of a clip must share."""
    (dy, dx), channels = frame_layout(raw, path)
    height, width = raw.raw_image_visible.shape
    letters = raw.color_desc.decode()
    wb = {}
    for letter, gain in zip(letters, raw.camera_whitebalance):
        wb.setdefault(letter, gain)  # the second green's entry is often 0, meaning "as the first"
    if not wb.get("G"):
        raise ValueError(f"{path}: no as-shot white balance in the metadata")
    ccm = np.asarray(raw.color_matrix, np.float64)[:, :3]
    if not np.any(ccm) and np.any(raw.rgb_xyz_matrix[:3]):
        ccm = ccm_from_xyz(raw.rgb_xyz_matrix)
    return {
        "black_level": [float(raw.black_level_per_channel[c]) for c in channels],
        "white_level": float(raw.white_level),
        "cfa": config.CFA,
        "wb_gains": [wb["R"] / wb["G"], 1.0, wb["B"] / wb["G"]],
        **({"ccm": ccm.tolist()} if np.any(ccm) else {}),
        "offset": [dy, dx],
        "packed_shape": [(height - dy) // 2, (width - dx) // 2],
        "flip": int(raw.sizes.flip),  # how the camera was held: the file's orientation, as LibRaw reads it
        # One exposure ratio brightens every frame, so a burst whose exposure changed would flicker.
        "shutter_s": float(raw.other.shutter_speed),  # 0 where the file records none
        "iso": float(raw.other.iso_speed),
    }


def upright(frames, flip):
    """(F, H, W, C) frames in the sensor's orientation, turned as the camera was held: LibRaw's
    `flip` code (`sizes.flip`, from the file's orientation tag), whose bits are 1: mirror left to
    right, 2: upside down, 4: swap rows and columns, in that order (as LibRaw's own rendering)."""
    if flip & 1:
        frames = frames[:, :, ::-1]
    if flip & 2:
        frames = frames[:, ::-1]
    if flip & 4:
        frames = frames.swapaxes(1, 2)
    return np.ascontiguousarray(frames)


def read_packed(path, meta):
    """One raw frame -> packed (h, w, 4) uint16 in GBRG order."""
    with _open(path) as raw:
        dy, dx = meta["offset"]
        h, w = meta["packed_shape"]
        return packed_from_mosaic(raw.raw_image_visible[dy:dy + 2 * h, dx:dx + 2 * w])


def capture_time(raw):
    """When the frame was taken, to the second, from its metadata; None where it records no time
    (LibRaw then reports the Unix epoch)."""
    taken = raw.other.timestamp
    return taken if taken > datetime(1970, 1, 2) else None


def in_capture_order(paths, times):
    """The paths in the order their frames were taken where every file records a time (then by
    name within a second), else by name: a camera's file counter wraps (IMG_9999, IMG_0001)."""
    if None in times:
        return sorted(paths)
    return [path for _, path in sorted(zip(times, paths))]


class RawFolder:
    """A sliceable, read-on-demand stand-in for a packed (F, h, w, 4) uint16 array."""

    def __init__(self, folder):
        folder = Path(folder)
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in config.RAW_SUFFIXES)
        if not paths:
            raise FileNotFoundError(f"{folder}: no camera raw files ({', '.join(sorted(config.RAW_SUFFIXES))})")
        self.meta, times = None, []
        # Every frame is checked up front (a mismatch found mid-video would waste the run); reading
        # the metadata decodes the frame, a while for a long burst, hence the bar after 2 s.
        for path in tqdm(paths, desc=f"{folder.name}: checking frames", unit="frame", delay=2, disable=None):
            with _open(path) as raw:
                meta = frame_meta(raw, path)
                times.append(capture_time(raw))
            if self.meta is None:
                self.meta = meta
            elif meta != self.meta:
                differs = sorted(k for k in meta if meta[k] != self.meta[k])
                raise ValueError(f"{path}: differs from {paths[0].name} in {', '.join(differs)}; every frame of a "
                                 "clip must share size and camera settings (fixed exposure and white balance)")
        self.paths = in_capture_order(paths, times)
        self.shape = (len(self.paths), *self.meta["packed_shape"], 4)
        self.dtype = np.dtype(np.uint16)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        """clip[a:b] or clip[a:b, rows, cols]: frames are always a slice."""
        frames, rest = (index[0], index[1:]) if isinstance(index, tuple) else (index, ())
        packed = np.stack([read_packed(p, self.meta) for p in self.paths[frames]])
        return packed[(slice(None), *rest)]


def write_dng(path, mosaic, cfa="RGGB", black=64, white=4095, neutral=(0.5, 1.0, 0.625), cam_xyz=np.eye(3), orientation=1,
              taken=None, shutter_s=None):
    """A minimal single-frame DNG (a TIFF/EP CFA image with the DNG tags LibRaw needs): how the
    tests, lab/generalisation.py and calibration simulate a camera's files."""
    import tifffile  # a scikit-image dependency

    rational = lambda values: tuple(x for v in values for x in (round(v * 1_000_000), 1_000_000))  # noqa: E731
    tags = [
        (50706, "B", 4, (1, 4, 0, 0)),  # DNGVersion
        (50708, "s", 0, "Synthetic Camera"),  # UniqueCameraModel
        (33421, "H", 2, (2, 2)),  # CFARepeatPatternDim
        (33422, "B", 4, tuple("RGB".index(c) for c in cfa)),  # CFAPattern
        (50713, "H", 2, (1, 1)),  # BlackLevelRepeatDim
        (50714, "H", 1, (int(black),)),  # BlackLevel
        (50717, "H", 1, (int(white),)),  # WhiteLevel
        (50721, "2i", 9, rational(np.asarray(cam_xyz).ravel())),  # ColorMatrix1: XYZ -> camera
        (50778, "H", 1, (21,)),  # CalibrationIlluminant1: D65
        (50728, "2I", 3, rational(neutral)),  # AsShotNeutral
        (274, "H", 1, (orientation,)),  # Orientation (TIFF): 1 as the sensor reads, 6 turned a quarter clockwise, ...
        *([(306, "s", 0, taken.strftime("%Y:%m:%d %H:%M:%S"))] if taken else []),  # DateTime: when it was taken
        *([(33434, "2I", 1, rational([shutter_s]))] if shutter_s else []),  # ExposureTime, seconds
    ]
    tifffile.imwrite(path, mosaic, photometric=32803, extratags=tags, subfiletype=0)
