"""The original's metrics, on uint8 RGB frames, computed frame by frame as a video streams past.

- PSNR per frame (max 255), averaged over the video;
- SSIM per frame (Gaussian window 11, sigma 1.5, k1 0.01, k2 0.03, as scikit-image's
  structural_similarity with gaussian_weights=True, use_sample_covariance=False), averaged;
- MSE(MABD): brightness 0.2126 R + 0.7152 G + 0.0722 B in [0, 1]; MABD(k) = mean over pixels of
  |br_k - br_(k-1)|, a vector of F-1 values per video; the score is the mean squared difference of
  the output's and the ground truth's vectors, in units of 1e-3. The difference is taken along time
  (the original's code took it along the image width, a bug).
"""
import numpy as np
import tensorflow as tf

from losses import LUMA, SSIM

MABD_UNIT = 1e-3
MSE_FLOOR = 1e-10  # identical frames score 10 log10(255^2 / 1e-10) = 148 dB, not infinity


def psnr(gt_frames, frames):
    """Per-frame PSNR of uint8 (F, H, W, 3) arrays."""
    error = (gt_frames.astype(np.float64) - frames.astype(np.float64)) ** 2
    mse = error.reshape(len(frames), -1).mean(axis=1)
    return 10 * np.log10(255.0**2 / np.maximum(mse, MSE_FLOOR))


def ssim(gt_frames, frames):
    """Per-frame SSIM of uint8 (F, H, W, 3) arrays."""
    options = dict(SSIM, max_val=255.0)
    return tf.image.ssim(tf.constant(gt_frames, tf.float32), tf.constant(frames, tf.float32), **options).numpy()


def brightness(frames):
    """uint8 (F, H, W, 3) -> (F, H, W) brightness in [0, 1]."""
    return frames.astype(np.float32) @ np.array(LUMA, np.float32) / 255.0


def mabd(brightness_frames):
    """(F, H, W) -> (F - 1,): mean absolute brightness difference between consecutive frames."""
    return np.abs(np.diff(brightness_frames, axis=0)).reshape(len(brightness_frames) - 1, -1).mean(axis=1)


def mse_mabd(gt_mabd, mabd_values):
    return float(np.mean((np.asarray(gt_mabd) - np.asarray(mabd_values)) ** 2) / MABD_UNIT)


class VideoScores:
    """Accumulates the metrics of one video chunk by chunk, holding only one frame of brightness."""

    def __init__(self):
        self.psnr, self.ssim, self.mabd, self.gt_mabd = [], [], [], []
        self.last = None  # the brightness of the previous chunk's last frame, output and ground truth

    def update(self, gt_frames, frames):
        self.psnr += psnr(gt_frames, frames).tolist()
        self.ssim += ssim(gt_frames, frames).tolist()
        out_br, gt_br = brightness(frames), brightness(gt_frames)
        if self.last is not None:
            out_br, gt_br = np.concatenate([self.last[0], out_br]), np.concatenate([self.last[1], gt_br])
        self.mabd += mabd(out_br).tolist()
        self.gt_mabd += mabd(gt_br).tolist()
        self.last = out_br[-1:], gt_br[-1:]

    def result(self):
        return {"psnr": float(np.mean(self.psnr)), "ssim": float(np.mean(self.ssim)),
                "mse_mabd": mse_mabd(self.gt_mabd, self.mabd) if self.mabd else float("nan"),
                "frames": len(self.psnr)}
