"""The classical baselines the network is measured against, on the same clips:

- `linear`: linear amplification (black level, exposure ratio, white balance, colour matrix:
  data.normalization `linear`), demosaic, and the tone curve synthesis.py inverted to make the dark
  raw (gamma 1 / 2.2, then 3x^2 - 2x^3), so that without noise it gives back the ground truth;
- `he`: the original's global histogram equalisation of the whole clip, demosaic.
"""
import cv2
import numpy as np

import config
import data
from video_io import to_uint8
from synthesis import linear_to_srgb

# OpenCV names a Bayer pattern by the second row's first two pixels, so GBRG is its "GR" (the
# baselines' test checks the colours).
OPENCV_DEMOSAIC = {"GBRG": cv2.COLOR_BayerGR2RGB}


def demosaic(packed):
    """Normalised packed frames (F, h, w, 4) in [0, 1] -> RGB (F, 2h, 2w, 3) in [0, 1]."""
    mosaic = (np.clip(data.mosaic_from_packed(packed), 0, 1) * 65535 + 0.5).astype(np.uint16)
    code = OPENCV_DEMOSAIC[config.CFA]
    return np.stack([cv2.cvtColor(frame, code) for frame in mosaic]).astype(np.float32) / 65535


def baseline_normalizers(clip, data_cfg):
    """{baseline name: normalizer} for the baselines this clip has the metadata for."""
    normalizers = {"he": data.make_normalizer(clip.packed_raw, clip.meta, {**data_cfg, "normalization": "he"}, clip.name)}
    try:
        normalizers["linear"] = data.make_normalizer(clip.packed_raw, clip.meta,
                                                     {**data_cfg, "normalization": "linear"}, clip.name)
    except ValueError:  # no black / white level or ratio: there is no linear baseline for this clip
        pass
    return normalizers


def render(name, normalize, packed_raw):
    """One chunk of uint16 packed frames -> uint8 RGB frames by baseline `name`."""
    rgb = demosaic(normalize(packed_raw))
    return to_uint8(linear_to_srgb(rgb) if name == "linear" else rgb)
