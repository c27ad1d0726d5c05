"""losses.py: SSIM against scikit-image, the region loss by hand, VGG and the combinator."""
import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from skimage.metrics import structural_similarity

import config
import losses


def loss_cfg(**changes):
    return config.load_config(overrides=[f"loss.{k}={v}" for k, v in changes.items()])["loss"]


def smooth_video(rng, shape):
    noise = rng.random(shape)
    return np.clip(0.5 * noise + 0.5 * np.roll(noise, 1, axis=-2), 0, 1).astype(np.float32)


def test_ssim_agrees_with_scikit_image():
    rng = np.random.default_rng(0)
    gt_rgb = smooth_video(rng, (2, 3, 40, 48, 3))
    rgb = np.clip(gt_rgb + rng.normal(0, 0.1, gt_rgb.shape), 0, 1).astype(np.float32)
    expected = [np.mean([structural_similarity(gt_rgb[b, f], rgb[b, f], data_range=1.0, channel_axis=-1,
                                               gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
                         for f in range(3)]) for b in range(2)]
    np.testing.assert_allclose(losses.ssim(gt_rgb, rgb).numpy(), expected, atol=1e-3)
    np.testing.assert_allclose(losses.structure_loss(gt_rgb, rgb).numpy(), 1 - np.array(expected), atol=1e-3)


def test_region_loss_by_hand():
    gt_rgb = np.array([[0.1, 0.1, 0.1], [0.9, 0.9, 0.9], [0.2, 0.3, 0.1]], np.float32).reshape(1, 1, 1, 3, 3)
    rgb = np.array([[0.2, 0.1, 0.1], [0.9, 0.6, 0.9], [0.2, 0.3, 0.4]], np.float32).reshape(1, 1, 1, 3, 3)
    # Pixels 1 and 3 are dark (luminance < 0.7): mean |error| over their 6 values = (0.1 + 0.3) / 6.
    # Pixel 2 is bright: mean |error| over its 3 values = 0.3 / 3.
    expected = 4 * (0.4 / 6) + 1 * (0.3 / 3)
    np.testing.assert_allclose(losses.region_loss(gt_rgb, rgb, 0.7, [4, 1]).numpy(), [expected], rtol=1e-5)
    all_dark = losses.region_loss(gt_rgb * 0.1, rgb * 0.1, 0.7, [4, 1]).numpy()  # no bright pixel: no NaN
    np.testing.assert_allclose(all_dark, [4 * np.abs(rgb - gt_rgb).mean() * 0.1], rtol=1e-5)


def test_cast_loss_by_hand():
    # Example 0: frame 0 is 0.1 too bright in R only; frame 1 is 0.2 too dark in all channels.
    # Example 1: +0.3 and -0.3 in two pixels of one frame: no cast, although every pixel is wrong.
    gt_rgb = np.full((2, 2, 2, 1, 3), 0.5, np.float32)
    rgb = gt_rgb.copy()
    rgb[0, 0, ..., 0] += 0.1
    rgb[0, 1] -= 0.2
    rgb[1, 0, 0], rgb[1, 0, 1] = 0.8, 0.2
    expected = [(0.1 / 3 + 0.2) / 2, 0.0]
    np.testing.assert_allclose(losses.cast_loss(gt_rgb, rgb).numpy(), expected, atol=1e-6)


def test_temporal_loss_by_hand_sees_flicker_that_l1_cannot_tell_from_a_steady_error():
    """Two outputs 0.1 off the ground truth in every pixel: one always above (steady), one above and
    below in turn (flicker). L1 scores both 0.1; the temporal term 0 and 0.2, the error of each
    frame-to-frame change. A single frame has no change: 0."""
    gt_rgb = np.full((1, 4, 2, 2, 3), 0.5, np.float32)
    steady = gt_rgb + 0.1
    flicker = gt_rgb + np.float32([0.1, -0.1, 0.1, -0.1]).reshape(1, 4, 1, 1, 1)
    np.testing.assert_allclose(losses.l1_loss(gt_rgb, steady), losses.l1_loss(gt_rgb, flicker), rtol=1e-6)
    np.testing.assert_allclose(losses.temporal_loss(gt_rgb, steady), [0.0], atol=1e-6)
    np.testing.assert_allclose(losses.temporal_loss(gt_rgb, flicker), [0.2], rtol=1e-5)
    np.testing.assert_allclose(losses.temporal_loss(gt_rgb[:, :1], flicker[:, :1]), [0.0])


def test_combinator_weights_the_configured_terms():
    rng = np.random.default_rng(1)
    gt_rgb, rgb = smooth_video(rng, (2, 2, 24, 24, 3)), smooth_video(rng, (2, 2, 24, 24, 3))
    total, terms = losses.make_loss(loss_cfg(terms={"l1": 1, "structure": 0.5, "region": 2}))(gt_rgb, rgb)
    assert sorted(terms) == ["l1", "region", "structure"] and total.shape == (2,)
    expected = np.abs(rgb - gt_rgb).reshape(2, -1).mean(1) + 0.5 * terms["structure"] + 2 * terms["region"]
    np.testing.assert_allclose(total.numpy(), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="unknown loss 'perceptual'; known losses: cast, l1, region, structure, temporal, vgg"):
        config.load_config(overrides=["loss.terms={perceptual: 1}"])


def numpy_ms_ssim(x, y):
    """MS-SSIM by hand (Wang et al. 2003): 5 scales with 2x2 mean pooling, Gaussian window 11 / 1.5
    without padding, the contrast-structure mean at every scale and the full SSIM at the last, raised
    to the paper's weights; per channel, then the mean over channels. x, y: (H, W, C) in [0, 1]."""
    taps = np.exp(-(np.arange(11) - 5.0) ** 2 / (2 * 1.5 ** 2))
    taps /= taps.sum()

    def blur(image):  # separable, 'valid'
        rows = np.apply_along_axis(np.convolve, 0, image, taps, "valid")
        return np.apply_along_axis(np.convolve, 1, rows, taps, "valid")

    c1, c2 = 0.01 ** 2, 0.03 ** 2
    weights = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]
    per_channel = []
    for channel in range(x.shape[-1]):
        a, b, product = x[..., channel].astype(np.float64), y[..., channel].astype(np.float64), 1.0
        for scale, weight in enumerate(weights):
            ma, mb = blur(a), blur(b)
            cs = (2 * (blur(a * b) - ma * mb) + c2) / (blur(a * a) - ma ** 2 + blur(b * b) - mb ** 2 + c2)
            if scale == len(weights) - 1:
                product *= np.mean((2 * ma * mb + c1) / (ma ** 2 + mb ** 2 + c1) * cs) ** weight
            else:
                product *= max(np.mean(cs), 0) ** weight
                a, b = (v.reshape(v.shape[0] // 2, 2, v.shape[1] // 2, 2).mean(axis=(1, 3)) for v in (a, b))
        per_channel.append(product)
    return np.mean(per_channel)


def test_ms_ssim_adds_to_the_structure_loss():
    rng = np.random.default_rng(2)
    gt_rgb = smooth_video(rng, (1, 1, 176, 176, 3))
    rgb = np.clip(gt_rgb + rng.normal(0, 0.05, gt_rgb.shape), 0, 1).astype(np.float32)
    plain, both = losses.structure_loss(gt_rgb, rgb), losses.structure_loss(gt_rgb, rgb, ms_ssim=True)
    ms = numpy_ms_ssim(gt_rgb[0, 0], rgb[0, 0])
    assert 0.3 < ms < 0.99  # a case where the scales differ, not a saturated one
    np.testing.assert_allclose(both.numpy(), plain.numpy() + 1 - ms, atol=2e-5)


def test_adversarial_losses_by_hand():
    logits = tf.constant([[0.0], [2.0], [-1.0], [1.0]])  # 2 examples x 2 frames
    softplus = lambda x: np.log1p(np.exp(x))  # noqa: E731; CE(real) = softplus(-x), CE(fake) = softplus(x)
    np.testing.assert_allclose(losses.generator_adversarial_loss(logits, 2).numpy(),
                               [(softplus(0) + softplus(-2)) / 2, (softplus(1) + softplus(-1)) / 2], rtol=1e-5)
    d = losses.discriminator_loss(logits, -logits, 2).numpy()
    np.testing.assert_allclose(d, [softplus(0) + softplus(-2), softplus(1) + softplus(-1)], rtol=1e-5)


def test_vgg_loss_runs_from_a_weights_file_in_keras_format(tmp_path):
    """Random VGG19 weights, saved in the layout of Keras' downloaded file, load by path."""
    from keras.src.legacy.saving import legacy_h5_format

    vgg = keras.applications.VGG19(include_top=False, weights=None)
    path = tmp_path / losses.VGG_WEIGHTS_FILE
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, vgg)
    loss = losses.make_loss(loss_cfg(terms={"vgg": 0.01}, vgg_weights=str(path)))
    rng = np.random.default_rng(3)
    gt_rgb = smooth_video(rng, (1, 2, 32, 32, 3))
    total, terms = loss(gt_rgb, gt_rgb)
    np.testing.assert_allclose(total.numpy(), [0.0], atol=1e-6)  # identical images: no loss
    total, terms = loss(gt_rgb, 1 - gt_rgb)
    assert total.numpy()[0] > 0 and np.isclose(total.numpy()[0], 0.01 * terms["vgg"].numpy()[0])


def test_vgg_sees_images_as_keras_vgg19_was_trained():
    """The input of the VGG features must equal keras.applications.vgg19.preprocess_input of the
    0-255 image (RGB -> BGR, ImageNet mean removed)."""
    seen = []
    video = np.random.default_rng(0).random((1, 2, 8, 8, 3)).astype(np.float32)
    losses.vgg_loss(lambda x: seen.append(x.numpy()) or [], tf.constant(video), tf.constant(video))
    expected = keras.applications.vgg19.preprocess_input(video[0] * 255.0)
    np.testing.assert_allclose(seen[0], expected, atol=1e-3)


def test_missing_vgg_weights_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"(?s)VGG19 weights not found at .*notop.h5.*loss.vgg_weights"):
        losses.make_loss(loss_cfg(terms={"vgg": 0.01}))
    with pytest.raises(FileNotFoundError, match="nowhere.h5"):
        losses.make_loss(loss_cfg(terms={"vgg": 0.01}, vgg_weights=str(tmp_path / "nowhere.h5")))
