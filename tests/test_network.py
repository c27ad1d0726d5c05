"""network.py: shapes, parameter count, gradients, bf16, and a tiny model that learns."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import config
import losses
import network


def model_cfg(**changes):
    return config.load_config(overrides=[f"model.{k}={v}" for k, v in changes.items()])["model"]


@pytest.mark.parametrize("depth", [2, 3, 4])
@pytest.mark.parametrize("resnet", [False, True])
def test_output_shapes_for_every_depth_and_odd_sizes(depth, resnet):
    model = network.build_unet(model_cfg(depth=depth, base_channels=4, resnet=resnet))
    for shape in [(2, 16, 16, 16, 4), (1, 3, 13, 21, 4), (2, 1, 5, 7, 4)]:
        rgb = model(np.random.rand(*shape).astype("float32"))
        assert tuple(rgb.shape) == (shape[0], shape[1], 2 * shape[2], 2 * shape[3], 3)


def test_parameter_count_matches_the_original():
    # Hand count, depth 3 / 32 channels: encoder 3,515,712 + decoder 1,914,304 + head 396.
    assert network.build_unet(model_cfg(depth=3, base_channels=32)).count_params() == 5_430_412


def test_residual_variant_adds_projections_only_where_channels_change():
    plain = network.build_unet(model_cfg(depth=2, base_channels=8))
    resnet = network.build_unet(model_cfg(depth=2, base_channels=8, resnet=True))
    # 1x1x1 projections: 8->16, 16->32 (encoder), 32->16, 16->8 (decoder concatenations).
    projections = (8 * 16 + 16) + (16 * 32 + 32) + (32 * 16 + 16) + (16 * 8 + 8)
    assert resnet.count_params() - plain.count_params() == projections
    names = {layer.name for layer in resnet.layers}
    assert {"down0_conv1", "down0_conv2", "down1_add", "dec0_add"} <= names  # the first pair stays plain
    assert not any(name.startswith("down0_add") for name in names)


def test_temporal_kernel_one_is_a_per_frame_unet():
    model = network.build_unet(model_cfg(depth=2, base_channels=4, temporal_kernel=1))
    video = np.random.rand(1, 3, 8, 8, 4).astype("float32")
    shuffled = video[:, [2, 0, 1]]
    np.testing.assert_allclose(model(shuffled).numpy(), model(video).numpy()[:, [2, 0, 1]], atol=1e-6)


def test_depth_to_space_matches_tensorflow():
    x = np.random.rand(2, 3, 4, 5, 12).astype("float32")
    expected = tf.nn.depth_to_space(x.reshape(6, 4, 5, 12), 2).numpy().reshape(2, 3, 8, 10, 3)
    np.testing.assert_array_equal(network.DepthToSpace()(x).numpy(), expected)


def test_gradients_reach_every_variable():
    generator = network.build_unet(model_cfg(depth=2, base_channels=4, resnet=True))
    discriminator = network.build_discriminator({"channels": [2, 4, 4, 4], "dense_units": [8, 4]}, 16, 16)
    video = tf.random.uniform((2, 2, 8, 8, 4))
    gt_rgb = tf.random.uniform((2, 2, 16, 16, 3))
    with tf.GradientTape(persistent=True) as tape:
        rgb = generator(video, training=True)
        logits = discriminator(losses.frames_as_batch(rgb), training=True)
        g_loss = losses.l1_loss(gt_rgb, rgb) + losses.generator_adversarial_loss(logits, 2)
        d_loss = losses.discriminator_loss(discriminator(losses.frames_as_batch(gt_rgb), training=True), logits, 2)
    for model, loss in ((generator, g_loss), (discriminator, d_loss)):
        grads = tape.gradient(loss, model.trainable_variables)
        assert all(g is not None and np.any(g.numpy() != 0) for g in grads), model.name


def test_discriminator_logit_is_raw_and_batch_norm_learns_in_training():
    discriminator = network.build_discriminator({"channels": [2, 2, 2, 2], "dense_units": [4, 4]}, 16, 16)
    assert discriminator.output.shape == (None, 1)
    assert discriminator.get_layer("logit").activation.__name__ == "linear"
    frames = tf.random.uniform((4, 16, 16, 3)) * 5
    bn = discriminator.get_layer("d0_bn1")
    before = bn.moving_mean.numpy().copy()
    discriminator(frames, training=False)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), before)
    discriminator(frames, training=True)
    assert np.any(bn.moving_mean.numpy() != before)


def test_bfloat16_computes_in_bf16_and_outputs_float32():
    model = network.build_unet(model_cfg(depth=2, base_channels=4, precision="mixed_bfloat16"))
    assert model.get_layer("down0_conv1").compute_dtype == "bfloat16"
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    rgb = model(np.random.rand(1, 2, 9, 9, 4).astype("float32"))
    assert rgb.dtype == tf.float32 and rgb.shape == (1, 2, 18, 18, 3)


def test_tiny_model_overfits_one_clip():
    """A learnable mapping (packed colours -> brighter RGB): L1 falls at least 3x in 60 Adam steps."""
    tf.keras.utils.set_random_seed(0)
    model = network.build_unet(model_cfg(depth=2, base_channels=8))
    packed = np.kron(np.random.default_rng(0).random((1, 4, 4, 4, 4)), np.ones((1, 1, 4, 4, 1)))
    video = tf.constant(packed, tf.float32)
    gt_rgb = tf.constant(np.kron(packed[..., [2, 0, 1]], np.ones((1, 1, 2, 2, 1))) ** 0.5, tf.float32)
    optimizer = tf.keras.optimizers.Adam(3e-3)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(losses.l1_loss(gt_rgb, model(video, training=True)))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    first = float(step())
    for _ in range(59):
        last = float(step())
    assert last < first / 3, (first, last)


def test_flop_count_matches_a_hand_count():
    """Depth 2, 4 channels, a (2, 8, 8) packed clip: 2 x kernel x C_in x C_out per voxel."""
    v0, v1, v2 = 2 * 8 * 8, 2 * 4 * 4, 2 * 2 * 2  # voxels at each level
    conv = lambda c_in, c_out, voxels: 2 * 27 * c_in * c_out * voxels  # noqa: E731
    hand = (conv(4, 4, v0) + conv(4, 4, v0) + conv(4, 8, v1) + conv(8, 8, v1) + conv(8, 16, v2) + conv(16, 16, v2)
            + 2 * 4 * 16 * 8 * v2 + conv(16, 8, v1) + conv(8, 8, v1)  # up1 (per input voxel), dec1
            + 2 * 4 * 8 * 4 * v1 + conv(8, 4, v0) + conv(4, 4, v0)  # up0, dec0
            + 2 * 4 * 12 * v0)  # head, 1x1x1
    assert hand == 1_245_184
    assert network.forward_flops(model_cfg(depth=2, base_channels=4), 2, 8, 8) == hand
    per_frame = network.forward_flops(model_cfg(depth=2, base_channels=4, temporal_kernel=1), 2, 8, 8)
    assert per_frame < hand / 2


def test_replicated_time_padding_sees_one_frame_as_a_still_scene():
    """A 1-frame clip must come out as that frame would in a still video: with zeros beyond the
    ends (the original's padding) it does not."""
    frame = np.random.default_rng(0).random((1, 1, 12, 12, 4)).astype("float32")
    still = np.repeat(frame, 9, axis=1)
    for padding, same in (("replicate", True), ("zeros", False)):
        keras.utils.set_random_seed(0)
        model = network.build_unet(model_cfg(depth=2, base_channels=4, time_padding=padding, precision="float32"))
        single, middle = model(frame).numpy()[:, 0], model(still).numpy()[:, 4]
        assert np.allclose(single, middle, atol=1e-5) == same, padding


def test_plain_weights_grow_into_a_resnet_that_computes_the_same(tmp_path):
    """train.init_weights from a plain U-Net into model.resnet: the same output on a clip, and the
    projections (the only new weights) train from there. A wider model still refuses the file."""
    keras.utils.set_random_seed(3)
    plain = network.build_unet(model_cfg(depth=2, base_channels=4, precision="float32"))
    for layer in plain.layers:  # biases away from zero, so a dropped bias would show
        layer.set_weights([w + 0.05 for w in layer.get_weights()])
    plain.save_weights(tmp_path / "plain.weights.h5")
    resnet_cfg = model_cfg(depth=2, base_channels=4, precision="float32", resnet=True)
    resnet = network.build_unet(resnet_cfg)
    network.load_initial_weights(resnet, resnet_cfg, tmp_path / "plain.weights.h5")
    clip = np.random.default_rng(3).random((1, 3, 12, 12, 4)).astype("float32")
    np.testing.assert_allclose(resnet(clip).numpy(), plain(clip).numpy(), atol=1e-6)
    projections = [layer for layer in resnet.layers if layer.name.endswith("_project")]
    assert len(projections) == 4  # down1, down2, dec1, dec0: every block changes its channel count
    wider_cfg = model_cfg(depth=2, base_channels=8, precision="float32", resnet=True)
    with pytest.raises(ValueError, match="train.init_weights: .*does not fit the configured model"):
        network.load_initial_weights(network.build_unet(wider_cfg), wider_cfg, tmp_path / "plain.weights.h5")


def test_3d_weights_collapse_into_a_per_frame_unet_that_enhances_single_frames_the_same(tmp_path):
    """train.init_weights from a 3D U-Net into model.temporal_kernel 1: on single frames the per-frame
    model computes what the 3D one does (its taps in time summed, as replication feeds them one
    frame); on a moving clip the two differ."""
    keras.utils.set_random_seed(4)
    video = network.build_unet(model_cfg(depth=2, base_channels=4, precision="float32"))
    video.save_weights(tmp_path / "video.weights.h5")
    per_frame_cfg = model_cfg(depth=2, base_channels=4, precision="float32", temporal_kernel=1)
    per_frame = network.build_unet(per_frame_cfg)
    network.load_initial_weights(per_frame, per_frame_cfg, tmp_path / "video.weights.h5")
    frames = np.random.default_rng(4).random((2, 1, 12, 12, 4)).astype("float32")
    np.testing.assert_allclose(per_frame(frames).numpy(), video(frames).numpy(), atol=1e-6)
    clip = np.random.default_rng(5).random((1, 3, 12, 12, 4)).astype("float32")
    assert not np.allclose(per_frame(clip).numpy(), video(clip).numpy(), atol=1e-3)

@pytest.mark.parametrize("length, frames, pixels", [(1, 1, 1), (2, 1, 0), (5, 1, 1), (5, 2, 1)])
def test_replicate_padding_and_its_written_out_gradient_by_hand(length, frames, pixels):
    rng = np.random.default_rng(length)
    x = rng.random((2, length, 3, 4, 2)).astype("float32")
    pad = network.ReplicateTimePad(frames, pixels)
    source = np.clip(np.arange(length + 2 * frames) - frames, 0, length - 1)  # the frame each output copies
    space = [(0, 0), (pixels, pixels), (pixels, pixels), (0, 0)]
    expected = np.stack([np.pad(x[:, t], space) for t in source], axis=1)
    np.testing.assert_array_equal(pad(x).numpy(), expected)
    # The gradient of sum(w * pad(x)): each output frame's weights, cut to the frame, go to its source.
    w = rng.random(expected.shape).astype("float32")
    x_var = tf.Variable(x)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(w * pad(x_var))
    by_hand = np.zeros_like(x)
    for t, frame in enumerate(source):
        by_hand[:, frame] += w[:, t, pixels:pixels + 3, pixels:pixels + 4]
    np.testing.assert_allclose(tape.gradient(total, x_var).numpy(), by_hand, rtol=1e-6)


def test_precision_auto_follows_the_cpu_flags(monkeypatch):
    monkeypatch.setattr(network, "bf16_hardware", lambda: "CPU flags amx_bf16")
    assert network.resolve_precision(model_cfg()) == ("mixed_bfloat16", "auto: CPU flags amx_bf16")
    monkeypatch.setattr(network, "bf16_hardware", lambda: None)
    assert network.resolve_precision(model_cfg())[0] == "float32"
    assert network.resolve_precision(model_cfg(precision="mixed_bfloat16"))[0] == "mixed_bfloat16"


@pytest.mark.parametrize("gpus, flags, reason, machine", [
    ([], {"avx2", "amx_bf16"}, "CPU flags amx_bf16", "Xeon X, CPU flags: amx_bf16"),
    ([], {"avx2", "avx512f"}, None, "Xeon X, CPU flags: no bf16"),
    ([("NVIDIA H100", (9, 0))], {"avx2"}, "GPU NVIDIA H100 runs bf16 natively", "NVIDIA H100"),
    ([("Tesla T4", (7, 5))], {"avx2"}, None, "Tesla T4"),  # Turing emulates bf16
])
def test_the_hardware_that_runs_bf16_and_the_machine_in_words(monkeypatch, gpus, flags, reason, machine):
    monkeypatch.setattr(network, "_gpus", lambda: gpus)
    monkeypatch.setattr(network, "cpu_info", lambda: ("Xeon X", flags))
    assert network.bf16_hardware() == reason
    assert network.machine() == machine


def test_a_weights_file_cut_short_says_so_instead_of_blaming_the_model(tmp_path):
    """Issue 40 row 13: truncated weights were reported as "do not fit the configured model"."""
    model_cfg = config.load_config(overrides=["model.depth=2", "model.base_channels=4"])["model"]
    model = network.build_unet(model_cfg)
    path = tmp_path / "best.weights.h5"
    model.save_weights(path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"best.weights.h5: not a readable weights file.*truncated file.*is it complete\?"):
        network.load_weights(model, model_cfg, path)


def test_weights_stored_in_half_precision_load_and_compute_as_before(tmp_path):
    """network.py --store-half: half the bytes of the arrays, loaded into float32 variables, each
    weight within float16's rounding of its float32 value, the output within a level."""
    model_cfg = config.load_config(overrides=["model.depth=2", "model.base_channels=8", "model.precision=float32"])["model"]
    keras.utils.set_random_seed(0)
    model = network.build_unet(model_cfg)
    full, half = tmp_path / "full.weights.h5", tmp_path / "half.weights.h5"
    model.save_weights(full)
    model.save_weights(half)
    network.main(["--store-half", str(half)])
    assert half.stat().st_size < 0.7 * full.stat().st_size
    loaded = network.build_unet(model_cfg)
    loaded.load_weights(half)
    for mine, theirs in zip(model.get_weights(), loaded.get_weights()):
        assert theirs.dtype == np.float32
        np.testing.assert_allclose(theirs, mine, rtol=1e-3, atol=1e-4)
    packed = np.random.default_rng(0).random((1, 4, 16, 16, 4)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict_on_batch(packed), model.predict_on_batch(packed), atol=1 / 255)
