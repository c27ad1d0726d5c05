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
  PSNR-sized penalty worth noticing but a large chromaticity error.

PSNR and SSIM are Keras functions of frames in levels (floats 0-255), on any backend, so that
validation during training (`train.TrainingModel.test_step`, train_jax.py) measures exactly what
test.py measures.
"""
import numpy as np
from keras import ops

from losses import LUMA, SSIM, frames_as_batch, per_example, ssim_images

MABD_UNIT = 1e-3
MSE_FLOOR = 1e-10  # identical frames score 10 log10(255^2 / 1e-10) = 148 dB, not infinity


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
    saved as, per frame, averaged over frames (test.py's): validation's, in train.py and train_jax.py."""
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
    return frames.astype(np.float32) @ np.array(LUMA, np.float32) / 255.0


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


class VideoScores:
    """Accumulates the metrics of one video chunk by chunk, holding only one frame of brightness."""

    def __init__(self):
        self.psnr, self.ssim, self.mabd, self.gt_mabd = [], [], [], []
        self.colour, self.gt_colour = [], []
        self.last = None  # the brightness of the previous chunk's last frame, output and ground truth

    def update(self, gt_frames, frames):
        self.psnr += psnr(gt_frames, frames).tolist()
        self.ssim += ssim(gt_frames, frames).tolist()
        self.colour += mean_colour(frames).tolist()
        self.gt_colour += mean_colour(gt_frames).tolist()
        out_br, gt_br = brightness(frames), brightness(gt_frames)
        if self.last is not None:
            out_br, gt_br = np.concatenate([self.last[0], out_br]), np.concatenate([self.last[1], gt_br])
        self.mabd += mabd(out_br).tolist()
        self.gt_mabd += mabd(gt_br).tolist()
        self.last = out_br[-1:], gt_br[-1:]

    def result(self):
        colour, gt_colour = np.array(self.colour), np.array(self.gt_colour)
        cast = (colour - gt_colour).mean(axis=0)
        chroma_error = np.linalg.norm(chromaticity(colour) - chromaticity(gt_colour), axis=-1).mean()
        return {"psnr": float(np.mean(self.psnr)), "ssim": float(np.mean(self.ssim)),
                "mse_mabd": mse_mabd(self.gt_mabd, self.mabd) if self.mabd else float("nan"),
                "motion": motion(self.gt_mabd, self.mabd) if self.mabd else float("nan"),
                "cast_r": float(cast[0]), "cast_g": float(cast[1]), "cast_b": float(cast[2]),
                "chroma_error": float(chroma_error), "frames": len(self.psnr)}
