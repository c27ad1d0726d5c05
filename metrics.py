"""The original's metrics, on uint8 RGB frames, computed frame by frame as a video streams past.

- PSNR per frame (max 255), averaged over the video;
- SSIM per frame (Gaussian window 11, sigma 1.5, k1 0.01, k2 0.03, as scikit-image's
  structural_similarity with gaussian_weights=True, use_sample_covariance=False), averaged;
- MSE(MABD): brightness 0.2126 R + 0.7152 G + 0.0722 B in [0, 1]; MABD(k) = mean over pixels of
  |br_k - br_(k-1)|, a vector of F-1 values per video; the score is the mean squared difference of
  the output's and the ground truth's vectors, in units of 1e-3. The difference is taken along time
  (the original's code took it along the image width, a bug);
- motion: the mean of the output's MABD over the ground truth's. MSE(MABD) scores an output that
  smooths moving content over time (motion below 1) as it scores one that flickers (above 1); this
  says which;
- colour: the cast, the mean of output minus ground truth per channel in levels (0-255), and the
  chromaticity error, the distance between the mean colour's chromaticity (r, g, b) / (r + g + b)
  of the output and of the ground truth, per frame, averaged. A grey output of a blue scene has no
  PSNR-sized penalty worth noticing but a large chromaticity error;
- angular error, per pixel: the angle between the output's and the ground truth's linear RGB
  (the colour-constancy measure: blind to brightness and tone curves), after both are downscaled
  ANGLE_SCALE times by area averaging (noise and demosaicking averaging out), over the brighter half
  of the ground truth's pixels (those with a colour to lose); its median and 90th percentile per
  frame, averaged. The mean colour hides a colour lost in part of the frame; the 90th percentile
  shows it.

PSNR and SSIM are Keras functions of frames in levels (floats 0-255), on any backend, so that
validation during training (`train.TrainingModel.test_step`, lab/train_jax.py) measures exactly what
test.py measures.
"""
import cv2
import numpy as np
from keras import ops

import config
from losses import SSIM, frames_as_batch, per_example, ssim_images
from synthesis import LEVEL_TO_LINEAR

MABD_UNIT = 1e-3
MSE_FLOOR = 1e-10  # identical frames score 10 log10(255^2 / 1e-10) = 148 dB, not infinity
ANGLE_SCALE = 4  # the angular error compares frames downscaled this many times on each side
STATIC_LEVELS = 1.0  # a ground-truth brightness change below this (levels) is a pixel standing still


def to_levels(rgb):
    """Float RGB in [0, 1] -> the uint8 levels it is saved as (video_io.to_uint8), as floats."""
    return ops.round(ops.clip(rgb, 0.0, 1.0) * 255.0)


def psnr_levels(gt_levels, levels):
    """Per-frame PSNR of (..., H, W, 3) float tensors in levels -> (...,)."""
    mse = ops.mean(ops.square(gt_levels - levels), axis=[-3, -2, -1])
    return 10.0 * ops.log10(255.0**2 / ops.maximum(mse, MSE_FLOOR))


def ssim_levels(gt_levels, levels):
    """Per-frame SSIM of (N, H, W, 3) float tensors in levels -> (N,)."""
    return ssim_images(gt_levels, levels, **dict(SSIM, max_val=255.0))


def video_psnr(gt_rgb, rgb):
    """Per example of (B, F, H, W, 3) float videos in [0, 1]: the PSNR of the uint8 levels they are
    saved as, per frame, averaged over frames (test.py's): validation's, in train.py and lab/train_jax.py."""
    return ops.mean(psnr_levels(to_levels(gt_rgb), to_levels(rgb)), axis=1)


def video_ssim(gt_rgb, rgb):
    """Per example of (B, F, H, W, 3) float videos in [0, 1]: SSIM as video_psnr measures PSNR."""
    frames = lambda video: frames_as_batch(to_levels(video))  # noqa: E731
    return per_example(ssim_levels(frames(gt_rgb), frames(rgb)), ops.shape(rgb)[0])


def psnr(gt_frames, frames):
    """Per-frame PSNR of uint8 (F, H, W, 3) arrays."""
    return ops.convert_to_numpy(psnr_levels(ops.convert_to_tensor(gt_frames, "float32"), ops.convert_to_tensor(frames, "float32")))


def ssim(gt_frames, frames):
    """Per-frame SSIM of uint8 (F, H, W, 3) arrays."""
    return ops.convert_to_numpy(ssim_levels(ops.convert_to_tensor(gt_frames, "float32"), ops.convert_to_tensor(frames, "float32")))


def mean_colour(frames):
    """uint8 (F, H, W, 3) -> (F, 3): each frame's mean RGB in levels."""
    return frames.reshape(len(frames), -1, 3).mean(axis=1, dtype=np.float64)


def chromaticity(colour):
    """(..., 3) mean colours -> (..., 3) chromaticities r, g, b that sum to 1."""
    return colour / np.maximum(colour.sum(axis=-1, keepdims=True), 1e-9)


def brightness(frames):
    """uint8 (F, H, W, 3) -> (F, H, W) brightness in [0, 1]."""
    return frames.astype(np.float32) @ np.array(config.LUMA, np.float32) / 255.0


def mabd(brightness_frames):
    """(F, H, W) -> (F - 1,): mean absolute brightness difference between consecutive frames."""
    if len(brightness_frames) < 2:  # a single frame has no difference (and must not fail to reshape)
        return np.zeros(0, np.float32)
    return np.abs(np.diff(brightness_frames, axis=0)).reshape(len(brightness_frames) - 1, -1).mean(axis=1)


def mse_mabd(gt_mabd, mabd_values):
    return float(np.mean((np.asarray(gt_mabd) - np.asarray(mabd_values)) ** 2) / MABD_UNIT)


def motion(gt_mabd, mabd_values):
    """How much the output changes from frame to frame, as a share of how much the truth does."""
    gt_change = float(np.mean(gt_mabd))
    return float(np.mean(mabd_values)) / gt_change if gt_change > 0 else float("nan")


def area_means(image, cell):
    """(H, W, C) -> its means over cells of about `cell` x `cell` pixels (at least one cell a side),
    by area averaging: cv2.INTER_AREA, with partial cells at the borders weighted by their area."""
    height, width = image.shape[:2]
    size = (max(1, round(width / cell)), max(1, round(height / cell)))
    return cv2.resize(np.asarray(image, np.float32), size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], -1)


def angular_errors(gt_linear, linear):
    """Per-pixel angles in degrees between two (H, W, 3) linear RGB frames, over the brighter half of
    `gt_linear`'s pixels by luminance, after both are downscaled ANGLE_SCALE times (area averaging)."""
    gt, out = (area_means(frame, ANGLE_SCALE).reshape(-1, 3).astype(np.float64) for frame in (gt_linear, linear))
    luminance = gt @ np.array(config.LUMA)
    lit = luminance >= np.median(luminance)
    cosine = (gt * out).sum(axis=1) / np.maximum(np.linalg.norm(gt, axis=1) * np.linalg.norm(out, axis=1), 1e-12)
    return np.degrees(np.arccos(np.clip(cosine[lit], -1.0, 1.0)))


def static_flicker(gt_before, gt_after, before, after):
    """(sum of the output's brightness change in levels, count) over the pixels where the ground
    truth stands still between two uint8 frames (STATIC_LEVELS)."""
    change = np.abs(brightness(after[None]) - brightness(before[None]))[0] * 255
    still = np.abs(brightness(gt_after[None]) - brightness(gt_before[None]))[0] * 255 < STATIC_LEVELS
    return float(change[still].sum()), int(still.sum())


def flow_consistent_warp(gt_before, gt_after):
    """(map x, map y, valid): where each pixel of `gt_after` was in `gt_before` (DIS optical flow on
    the ground truth), and whether that flow is trusted: consistent forward and backward
    (Sundaram et al. 2010: an occlusion breaks it) and inside the frame."""
    grey_before, grey_after = (cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in (gt_before, gt_after))
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    backward = dis.calc(grey_after, grey_before, None)  # after -> before
    forward = dis.calc(grey_before, grey_after, None)
    height, width = grey_after.shape
    x, y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    map_x, map_y = x + backward[..., 0], y + backward[..., 1]
    there = cv2.remap(forward, map_x, map_y, cv2.INTER_LINEAR)
    mismatch = np.square(backward + there).sum(axis=-1)
    bound = 0.01 * (np.square(backward).sum(axis=-1) + np.square(there).sum(axis=-1)) + 0.5
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    return map_x, map_y, (mismatch < bound) & inside


def warp_error(flow, before, after):
    """(sum of |after - before warped onto it| in levels, over RGB, count of pixels) over the
    pixels where `flow`, the ground truth's (flow_consistent_warp), is trusted."""
    map_x, map_y, valid = flow
    warped = cv2.remap(before.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR)
    difference = np.abs(after.astype(np.float32) - warped).mean(axis=-1)
    return float(difference[valid].sum()), int(valid.sum())


class VideoScores:
    """Accumulates the metrics of one video chunk by chunk, holding only one frame of brightness."""

    def __init__(self):
        self.psnr, self.ssim, self.mabd, self.gt_mabd = [], [], [], []
        self.colour, self.gt_colour, self.angle_median, self.angle_p90 = [], [], [], []
        self.flicker, self.warp = np.zeros(2), np.zeros(2)  # sums and counts
        self.last = None  # the previous chunk's last frame, ground truth and output

    def update(self, gt_frames, frames):
        update_all({None: self}, gt_frames, {None: frames})

    def add_frames(self, gt_frames, frames):
        """The scores of a chunk frame by frame; returns the chunk's pairs of consecutive frames,
        the previous chunk's last one first, as (ground truth, output) frames."""
        self.psnr += psnr(gt_frames, frames).tolist()
        self.ssim += ssim(gt_frames, frames).tolist()
        self.colour += mean_colour(frames).tolist()
        self.gt_colour += mean_colour(gt_frames).tolist()
        for gt_frame, frame in zip(gt_frames, frames):
            angles = angular_errors(LEVEL_TO_LINEAR[gt_frame], LEVEL_TO_LINEAR[frame])
            self.angle_median.append(float(np.median(angles)))
            self.angle_p90.append(float(np.percentile(angles, 90)))
        if self.last is not None:
            gt_frames, frames = np.concatenate([self.last[0], gt_frames]), np.concatenate([self.last[1], frames])
        self.mabd += mabd(brightness(frames)).tolist()
        self.gt_mabd += mabd(brightness(gt_frames)).tolist()
        self.last = gt_frames[-1:], frames[-1:]
        return gt_frames, frames

    def add_pair(self, gt_pair, pair, flow):
        """Flicker and warping error of one pair of consecutive frames, along the ground truth's flow."""
        self.flicker += static_flicker(*gt_pair, *pair)
        self.warp += warp_error(flow, *pair)

    def result(self):
        colour, gt_colour = np.array(self.colour), np.array(self.gt_colour)
        cast = (colour - gt_colour).mean(axis=0)
        chroma_error = np.linalg.norm(chromaticity(colour) - chromaticity(gt_colour), axis=-1).mean()
        return {"psnr": float(np.mean(self.psnr)), "ssim": float(np.mean(self.ssim)),
                "mse_mabd": mse_mabd(self.gt_mabd, self.mabd) if self.mabd else float("nan"),
                "motion": motion(self.gt_mabd, self.mabd) if self.mabd else float("nan"),
                "cast_r": float(cast[0]), "cast_g": float(cast[1]), "cast_b": float(cast[2]),
                "chroma_error": float(chroma_error), "angle_median": float(np.mean(self.angle_median)),
                "angle_p90": float(np.mean(self.angle_p90)), "flicker": ratio(*self.flicker),
                "warp_error": ratio(*self.warp), "frames": len(self.psnr)}


def update_all(scores, gt_frames, outputs):
    """Update several methods' VideoScores ({method: scores}) on one chunk of ground truth and each
    method's output ({method: frames}); the ground truth's optical flow, the same for every method,
    is computed once a pair of frames, and one pair's at a time is held."""
    chunks = {method: scores[method].add_frames(gt_frames, frames) for method, frames in outputs.items()}
    gt_frames = next(iter(chunks.values()))[0]
    for k in range(1, len(gt_frames)):
        gt_pair = gt_frames[k - 1], gt_frames[k]
        flow = flow_consistent_warp(*gt_pair)
        for method, (_, frames) in chunks.items():
            scores[method].add_pair(gt_pair, (frames[k - 1], frames[k]), flow)


def ratio(total, count):
    """A mean from its sum and count; NaN where nothing was counted (a photo, a scene that never stands still)."""
    return float(total / count) if count else float("nan")
