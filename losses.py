"""Every loss of the original, on video tensors (batch, frames, H, W, 3) in [0, 1].

Each loss returns one value per example, shape (batch,), so that a distributed training step can
average over the global batch. `make_loss(loss_cfg)` builds the weighted sum named in config:
    loss.terms: {l1: 1}                             the baseline
    loss.terms: {structure: 1, region: 1, vgg: 0.01}  multi-loss 1
    loss.terms: {l1: 1, structure: 1, region: 1}      multi-loss 2
plus `cast`, this project's: the error of each frame's mean colour (see cast_loss), and
`temporal`: the error of the change from frame to frame (see temporal_loss).
"""
import os
from pathlib import Path

import keras
import numpy as np
from keras import ops

import config

SSIM = {"max_val": 1.0, "filter_size": config.SSIM_WINDOW, "filter_sigma": 1.5, "k1": 0.01, "k2": 0.03}
VGG_LAYERS = ("block1_conv2", "block2_conv2", "block3_conv2", "block4_conv2")  # relu1_2 ... relu4_2
VGG_WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"  # Keras' own name for it
IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)


def _per_example_mean(x):
    return ops.mean(ops.reshape(x, (ops.shape(x)[0], -1)), axis=1)


def frames_as_batch(video):
    """(B, F, H, W, C) -> (B * F, H, W, C): image operations then work per frame."""
    return ops.reshape(video, (-1, *ops.shape(video)[2:]))


def per_example(per_frame, batch):
    """(B * F,) -> (B,): the mean over each example's frames."""
    return ops.mean(ops.reshape(per_frame, (batch, -1)), axis=1)


def l1_loss(gt_rgb, rgb):
    return _per_example_mean(ops.abs(rgb - gt_rgb))


def region_loss(gt_rgb, rgb, threshold, weights):
    """Weighted mean absolute error of dark and bright pixels, each averaged over its own pixels.

    The mask comes from the ground truth's luminance (the original took it from the network output,
    which lets the network move pixels between regions to lower its own loss)."""
    dark = ops.cast(ops.tensordot(gt_rgb, ops.convert_to_tensor(config.LUMA, gt_rgb.dtype), axes=1) < threshold, rgb.dtype)
    error = ops.sum(ops.abs(rgb - gt_rgb), axis=-1)  # summed over RGB: /3 below gives the mean
    terms = []
    for mask, weight in ((dark, weights[0]), (1.0 - dark, weights[1])):
        count = ops.sum(ops.reshape(mask, (ops.shape(mask)[0], -1)), axis=1)
        total = ops.sum(ops.reshape(mask * error, (ops.shape(mask)[0], -1)), axis=1)
        terms.append(weight * total / ops.maximum(3.0 * count, 1.0))
    return terms[0] + terms[1]


def cast_loss(gt_rgb, rgb):
    """Mean absolute error of each frame's mean R, G and B: a brightness or colour cast of the whole frame.

    Per-pixel L1 barely pulls on a global gain (its gradient from noisy pixels largely cancels), and
    a model warm-started from one that had to guess each clip's exposure kept guessing: its outputs'
    brightness drifted from clip to clip. This term pulls on the frame's mean directly; it is the
    `cast` column of metrics.py, in [0, 1] instead of levels."""
    frame_means = ops.mean(rgb - gt_rgb, axis=[2, 3])  # (B, F, 3)
    return _per_example_mean(ops.abs(frame_means))


def temporal_loss(gt_rgb, rgb):
    """Mean absolute error of the change from each frame to the next, (B, F - 1, H, W, 3): noise that
    changes every frame is flicker where the ground truth stands still, and every other term
    compares frames one by one, blind to it. A crop of one frame has no change: 0."""
    if rgb.shape[1] is not None and rgb.shape[1] < 2:
        return ops.zeros((ops.shape(rgb)[0],), rgb.dtype)
    change, gt_change = rgb[:, 1:] - rgb[:, :-1], gt_rgb[:, 1:] - gt_rgb[:, :-1]
    return _per_example_mean(ops.abs(change - gt_change))


def _gaussian_blur(images, size, sigma):
    """(N, H, W, C) -> (N, H - size + 1, W - size + 1, C): a normalised Gaussian window, valid part
    only, as separable row and column passes (the 2D window is their outer product)."""
    taps = np.exp(-((np.arange(size) - (size - 1) / 2) ** 2) / (2 * sigma**2))
    taps = (taps / taps.sum()).astype(np.float32)
    channels = images.shape[-1]
    rows = ops.convert_to_tensor(np.tile(taps.reshape(size, 1, 1, 1), (1, 1, channels, 1)), images.dtype)
    cols = ops.convert_to_tensor(np.tile(taps.reshape(1, size, 1, 1), (1, 1, channels, 1)), images.dtype)
    return ops.depthwise_conv(ops.depthwise_conv(images, rows, padding="valid"), cols, padding="valid")


def ssim_images(gt_images, images, max_val, filter_size, filter_sigma, k1, k2):
    """Per-image SSIM of (N, H, W, C) tensors -> (N,): the Wang et al. (2004) map with a Gaussian
    window, valid part, averaged over pixels and channels (tf.image.ssim's definition)."""
    c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
    blur = lambda x: _gaussian_blur(x, filter_size, filter_sigma)  # noqa: E731
    mean_gt, mean = blur(gt_images), blur(images)
    mean_product, mean_squares = mean_gt * mean, mean_gt**2 + mean**2
    luminance = (2.0 * mean_product + c1) / (mean_squares + c1)
    covariance = 2.0 * (blur(gt_images * images) - mean_product)
    variances = blur(gt_images**2 + images**2) - mean_squares
    contrast_structure = (covariance + c2) / (variances + c2)
    return ops.mean(luminance * contrast_structure, axis=[1, 2, 3])


def ssim(gt_rgb, rgb):
    """Mean SSIM per example: Gaussian window 11, sigma 1.5, per frame, then over frames."""
    return per_example(ssim_images(frames_as_batch(gt_rgb), frames_as_batch(rgb), **SSIM), ops.shape(rgb)[0])


def structure_loss(gt_rgb, rgb, ms_ssim=False):
    loss = 1.0 - ssim(gt_rgb, rgb)
    if ms_ssim:
        import tensorflow as tf  # multi-scale SSIM is TensorFlow's; the rest of this file runs on any Keras backend

        ms = tf.image.ssim_multiscale(frames_as_batch(gt_rgb), frames_as_batch(rgb), **SSIM)
        loss += 1.0 - per_example(ms, ops.shape(rgb)[0])
    return loss


def vgg_weights_path(loss_cfg):
    """The VGG19 weights file from config, else Keras' cache; never downloads."""
    keras_cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"
    path = Path(loss_cfg["vgg_weights"] or keras_cache / VGG_WEIGHTS_FILE)
    if not path.is_file():
        raise FileNotFoundError(
            f"VGG19 weights not found at {path}. The vgg loss needs Keras' ImageNet VGG19 weights without "
            f"the top ({VGG_WEIGHTS_FILE}, 80 MB). On a machine with internet access run "
            "`python -c \"import keras; keras.applications.VGG19(include_top=False)\"`, copy "
            f"~/.keras/models/{VGG_WEIGHTS_FILE} here, and set loss.vgg_weights to its path "
            f"(or put it in the Keras cache, {keras_cache}). Nothing is downloaded at run time.")
    return path


def build_vgg_features(weights_path):
    """VGG19 up to relu4_2, returning the original's four feature maps."""
    vgg = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    vgg.load_weights(weights_path)
    vgg.trainable = False
    return keras.Model(vgg.input, [vgg.get_layer(name).output for name in VGG_LAYERS], name="vgg_features")


def vgg_loss(features, gt_rgb, rgb):
    """L1 between VGG19 features of output and ground truth: the image itself and relu1_2 .. relu4_2,
    each weighted 1. Images go in as Keras' VGG19 was trained: 0-255, BGR, ImageNet mean removed."""
    batch = ops.shape(rgb)[0]

    def prepare(video):
        return frames_as_batch(video)[..., ::-1] * 255.0 - ops.convert_to_tensor(IMAGENET_MEAN_BGR, video.dtype)

    gt_in, out_in = prepare(gt_rgb), prepare(rgb)
    loss = per_example(ops.mean(ops.abs(gt_in - out_in), axis=[1, 2, 3]), batch)
    for gt_feature, out_feature in zip(features(gt_in), features(out_in)):
        diff = ops.mean(ops.abs(ops.cast(gt_feature, "float32") - ops.cast(out_feature, "float32")), axis=[1, 2, 3])
        loss += per_example(diff, batch)
    return loss


def _sigmoid_cross_entropy(labels, logits):
    return ops.binary_crossentropy(labels, logits, from_logits=True)


def generator_adversarial_loss(fake_logits, batch):
    """Sigmoid cross-entropy of the discriminator's per-frame logits against 'real'."""
    ce = _sigmoid_cross_entropy(ops.ones_like(fake_logits), fake_logits)
    return per_example(ce[:, 0], batch)


def discriminator_loss(real_logits, fake_logits, batch):
    real = _sigmoid_cross_entropy(ops.ones_like(real_logits), real_logits)
    fake = _sigmoid_cross_entropy(ops.zeros_like(fake_logits), fake_logits)
    return per_example(real[:, 0] + fake[:, 0], batch)


def make_loss(loss_cfg):
    """The configured mix: a function (gt_rgb, rgb) -> (total per example, {term: per example})."""
    terms = {}
    for name in loss_cfg["terms"]:
        if name == "l1":
            terms[name] = l1_loss
        elif name == "cast":
            terms[name] = cast_loss
        elif name == "temporal":
            terms[name] = temporal_loss
        elif name == "region":
            terms[name] = lambda gt, out: region_loss(gt, out, loss_cfg["region_threshold"], loss_cfg["region_weights"])
        elif name == "structure":
            terms[name] = lambda gt, out: structure_loss(gt, out, loss_cfg["ms_ssim"])
        elif name == "vgg":
            features = build_vgg_features(vgg_weights_path(loss_cfg))
            terms[name] = lambda gt, out: vgg_loss(features, gt, out)
        else:
            raise ValueError(f"unknown loss {name!r}; known losses: {', '.join(config.LOSS_TERMS)}")

    def total_loss(gt_rgb, rgb):
        gt_rgb, rgb = ops.cast(gt_rgb, "float32"), ops.cast(rgb, "float32")
        values = {name: term(gt_rgb, rgb) for name, term in terms.items()}
        return sum(loss_cfg["terms"][name] * value for name, value in values.items()), values

    return total_loss
