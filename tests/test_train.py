"""train.py: learning, exact resume, distribution, bf16, GAN, previews and early config errors."""
import itertools
import json
import math
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

import callbacks
import config
import crops
import data
from lab import figures
import generate_file_list
import synthesis
import train

# float32: exact comparisons must not depend on whether this CPU has bf16 instructions (auto).
TINY = ["model.depth=2", "model.base_channels=4", "model.precision=float32", "train.crop_frames=4", "train.crop_size=8",
        "train.batch_size=2", "train.epochs=2", "train.learning_rate=0.003", "train.preview_every=1",
        "train.start_stride=1"]  # 6 steps an epoch


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """Five synthetic clips of 10 frames, 24x32 ground truth, and their lists."""
    root = tmp_path_factory.mktemp("tiny_data")
    folders = [f"data.input_dir={root / 'train_he'}", f"data.gt_dir={root / 'gt_he'}", f"data.lists_dir={root}"]
    cfg = config.load_config(overrides=folders + ["synthesis.frames=10", "synthesis.height=24", "synthesis.width=32",
                                                  "synthesis.ratio_range=[4, 8]"])
    rng = np.random.default_rng(0)
    images = {f"scene{i}": (np.kron(rng.random((6, 8, 3)), np.ones((10, 10, 1))) * 255).astype(np.uint8) for i in range(5)}
    synthesis.synthesize_sources([(name, "test", lambda s, image=image, name=name: synthesis.still_clip(image, name, s))
                                  for name, image in images.items()], cfg)
    generate_file_list.main(["--set", *folders])
    return folders


def tiny_cfg(tiny_data, tmp_path, *extra):
    return config.load_config(overrides=tiny_data + TINY + [f"train.checkpoint_root={tmp_path}", *extra])


def read_weights(path):
    with h5py.File(path) as f:
        arrays = []
        f.visititems(lambda name, item: arrays.append(item[()]) if isinstance(item, h5py.Dataset) else None)
    return arrays


def test_training_lowers_the_loss_and_writes_its_outputs(tiny_data, tmp_path):
    cfg = tiny_cfg(tiny_data, tmp_path, "train.epochs=6", "experiment=learn")
    history = train.train(cfg, verbose=0)
    loss = history.history["loss"]
    assert loss[-1] < 0.7 * loss[0], loss
    folder = tmp_path / "learn"
    for name in ("last.weights.h5", "last.json", "best.weights.h5", "best.json", "config.yaml", "log.csv", "preview/epoch_006.mp4"):
        assert (folder / name).is_file(), name
    assert json.loads((folder / "last.json").read_text())["epoch"] == 6
    assert not (folder / "backup").exists()  # a finished run leaves no backup behind
    log = (folder / "log.csv").read_text().splitlines()
    assert {"epoch", "l1", "val_psnr", "epoch_seconds"} <= set(log[0].split(",")) and len(log) == 7
    seconds = figures.read_log(folder / "log.csv")["epoch_seconds"]
    assert all(0 < t < 60 for t in seconds), seconds
    assert {"val_psnr", "val_ssim", "val_l1"} <= set(log[0].split(","))
    assert config.load_config(folder / "config.yaml") == cfg  # the saved config rebuilds the run


def test_validation_scores_equal_test_metrics_on_the_same_frames(tiny_data, tmp_path):
    import losses
    import metrics
    from video_io import to_uint8
    cfg = tiny_cfg(tiny_data, tmp_path)
    model = train.build_enhancer(cfg, losses.make_loss(cfg["loss"]), 10)
    clips = data.open_list(tiny_data_root(tiny_data) / "valid_list", cfg["data"])
    packed, _ = crops.validation_arrays(clips, cfg["train"])
    outputs = model.generator(packed).numpy()
    # A ground truth a level or so from the output: here rounding to uint8 changes the score.
    noise = np.random.default_rng(0).integers(-1, 2, outputs.shape)
    gt_uint8 = np.clip(to_uint8(outputs).astype(int) + noise, 0, 255).astype(np.uint8)
    scores = model.evaluate(packed, gt_uint8 / np.float32(255), batch_size=2, verbose=0, return_dict=True)
    outputs = to_uint8(outputs)
    assert scores["psnr"] == pytest.approx(np.mean([metrics.psnr(g, o).mean() for g, o in zip(gt_uint8, outputs)]), abs=1e-3)
    assert scores["ssim"] == pytest.approx(np.mean([metrics.ssim(g, o).mean() for g, o in zip(gt_uint8, outputs)]), abs=1e-4)


def tiny_data_root(tiny_data):
    return Path(tiny_data[-1].split("=", 1)[1])


def test_interrupted_run_resumes_to_the_same_weights(tiny_data, tmp_path):
    class Interrupt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.model.optimizer.iterations.numpy() == 9:  # mid-way through epoch 2 of 3
                raise KeyboardInterrupt

    common = ["train.epochs=3", "train.deterministic=true", "gan.enabled=true", "gan.dense_units=[8]",
              "gan.channels=[2, 2, 2, 2]"]
    train.train(tiny_cfg(tiny_data, tmp_path, *common, "experiment=straight"), verbose=0)
    resumed = tiny_cfg(tiny_data, tmp_path, *common, "experiment=resumed")
    with pytest.raises(KeyboardInterrupt):
        train.train(resumed, extra_callbacks=[Interrupt()], verbose=0)
    assert (tmp_path / "resumed" / "backup").is_dir()
    history = train.train(resumed, verbose=0)
    assert len(history.history["loss"]) == 2  # epochs 2 and 3 only
    straight, again = (read_weights(tmp_path / name / "last.weights.h5") for name in ("straight", "resumed"))
    assert len(straight) == len(again)
    for a, b in zip(straight, again):
        np.testing.assert_allclose(a, b, atol=1e-5)
    log = (tmp_path / "resumed" / "log.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in log[1:]] == ["0", "1", "2"]


def test_fine_tuning_starts_from_the_given_weights(tiny_data, tmp_path):
    train.train(tiny_cfg(tiny_data, tmp_path, "experiment=first"), verbose=0)
    init = tmp_path / "first" / "last.weights.h5"
    # With a zero learning rate, a run that starts from `init` ends exactly where it began.
    train.train(tiny_cfg(tiny_data, tmp_path, "experiment=tuned", f"train.init_weights={init}",
                         "train.learning_rate=0", "train.epochs=1"), verbose=0)
    for before, after in zip(read_weights(init), read_weights(tmp_path / "tuned" / "last.weights.h5"), strict=True):
        np.testing.assert_array_equal(before, after)
    with pytest.raises(ValueError, match=r"train.init_weights: .*last.weights.h5 does not fit the configured model"):
        train.train(tiny_cfg(tiny_data, tmp_path, "experiment=wider", f"train.init_weights={init}",
                             "model.base_channels=8"), verbose=0)
    assert not (tmp_path / "wider").exists()


def test_ema_saves_the_average_and_resumes_from_the_raw_weights(tiny_data, tmp_path):
    class Interrupt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.model.optimizer.iterations.numpy() == 4:  # mid-way through epoch 2 of 2
                raise KeyboardInterrupt

    common = ["train.deterministic=true", "train.steps_per_epoch=3"]
    train.train(tiny_cfg(tiny_data, tmp_path, *common, "train.epochs=1", "train.steps_per_epoch=1", "experiment=one_step"),
                verbose=0)
    # Keras' average starts at the weights after the first step; momentum ~1 then keeps it there.
    nearly_one = ["train.ema_momentum=0.999999", "train.epochs=2"]
    train.train(tiny_cfg(tiny_data, tmp_path, *common, *nearly_one, "experiment=straight"), verbose=0)
    resumed = tiny_cfg(tiny_data, tmp_path, *common, *nearly_one, "experiment=resumed")
    with pytest.raises(KeyboardInterrupt):
        train.train(resumed, extra_callbacks=[Interrupt()], verbose=0)
    train.train(resumed, verbose=0)
    one_step, straight, again = (read_weights(tmp_path / name / "last.weights.h5")
                                 for name in ("one_step", "straight", "resumed"))
    for a, b, c in zip(one_step, straight, again, strict=True):
        np.testing.assert_allclose(b, a, atol=1e-4)
        np.testing.assert_allclose(c, a, atol=1e-4)
    # Without the average the same 6 steps end far from the first.
    train.train(tiny_cfg(tiny_data, tmp_path, *common, "train.epochs=2", "experiment=raw"), verbose=0)
    raw = read_weights(tmp_path / "raw" / "last.weights.h5")
    assert max(np.abs(a - r).max() for a, r in zip(one_step, raw)) > 1e-3


def test_mirrored_strategy_matches_one_device(tiny_data, tmp_path):
    """Two logical CPUs (configured before TensorFlow starts, so in a fresh process)."""
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(Path(train.__file__).parent)!r})
        import numpy as np, tensorflow as tf, keras
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import config, losses, train
        cfg = config.load_config(overrides={TINY!r} + ["train.batch_size=4"])
        rng = np.random.default_rng(0)
        batch = (rng.random((4, 4, 8, 8, 4), np.float32), rng.random((4, 4, 16, 16, 3), np.float32))
        results = []
        for strategy in (tf.distribute.get_strategy(), tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])):
            keras.utils.set_random_seed(0)
            with strategy.scope():
                model = train.build_enhancer(cfg, losses.make_loss(cfg["loss"]), 10)
            history = model.fit(tf.data.Dataset.from_tensors(batch), epochs=1, verbose=0)
            results.append((history.history["loss"][0], [w.numpy() for w in model.generator.weights]))
        (loss_one, weights_one), (loss_two, weights_two) = results
        assert results[1] is not None and abs(loss_one - loss_two) < 1e-5, (loss_one, loss_two)
        assert max(np.abs(a - b).max() for a, b in zip(weights_one, weights_two)) < 1e-5
        print("replicas agree", loss_one, loss_two)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "replicas agree" in done.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_workers_on_localhost_train_like_one_device(tiny_data, tmp_path):
    """train.strategy=multi_worker, two processes with TF_CONFIG as on two machines: the chief writes
    the run's folder, the other worker its own copy below it, and both end with the same weights."""
    workers = [f"localhost:{free_port()}" for _ in range(2)]
    common = [*TINY, "train.epochs=2", "train.steps_per_epoch=2", "train.preview_every=0", "experiment=mw"]
    command = [sys.executable, str(Path(train.__file__)), "--set", *tiny_data, *common,
               f"train.checkpoint_root={tmp_path}", "train.strategy=multi_worker"]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={
        **os.environ, "TF_CONFIG": json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})})
        for i in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    chief, other = tmp_path / "mw", tmp_path / "mw" / "worker1"
    for folder in (chief, other):
        assert (folder / "log.csv").is_file() and not (folder / "backup").exists()
    assert not (chief / "worker0").exists()
    for a, b in zip(read_weights(chief / "last.weights.h5"), read_weights(other / "last.weights.h5"), strict=True):
        np.testing.assert_array_equal(a, b)
    train.train(tiny_cfg(tiny_data, tmp_path / "one", *common), verbose=0)
    for a, b in zip(read_weights(chief / "last.weights.h5"), read_weights(tmp_path / "one" / "mw" / "last.weights.h5"),
                    strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_bfloat16_trains_with_float32_output(tiny_data, tmp_path):
    cfg = tiny_cfg(tiny_data, tmp_path, "model.precision=mixed_bfloat16", "train.epochs=1", "experiment=bf16")
    history = train.train(cfg, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    import network
    model = network.build_unet(cfg["model"])
    model.load_weights(tmp_path / "bf16" / "last.weights.h5")
    assert model(np.zeros((1, 2, 8, 8, 4), np.float32)).dtype == "float32"


def test_gan_updates_both_networks(tiny_data, tmp_path):
    cfg = tiny_cfg(tiny_data, tmp_path, "gan.enabled=true", "gan.dense_units=[16, 8]", "gan.channels=[2, 4, 4, 4]")
    import losses
    model = train.build_enhancer(cfg, losses.make_loss(cfg["loss"]), 10)
    before = [w.numpy().copy() for w in (model.generator.weights + model.discriminator.trainable_weights)]
    rng = np.random.default_rng(0)
    logs = model.train_step((rng.random((2, 4, 8, 8, 4), np.float32), rng.random((2, 4, 16, 16, 3), np.float32)))
    after = [w.numpy() for w in (model.generator.weights + model.discriminator.trainable_weights)]
    changed = [not np.array_equal(a, b) for a, b in zip(before, after)]
    n_generator = len(model.generator.weights)
    assert all(changed[:n_generator]) and all(changed[n_generator:])
    assert {"loss", "l1", "adversarial", "d_loss"} <= set(logs)
    assert float(logs["loss"]) == pytest.approx(float(logs["l1"]) + float(logs["adversarial"]), rel=1e-5)
    model.adversarial_weight = 0.25
    logs = model.train_step((rng.random((2, 4, 8, 8, 4), np.float32), rng.random((2, 4, 16, 16, 3), np.float32)))
    model.reset_metrics()
    logs = model.train_step((rng.random((2, 4, 8, 8, 4), np.float32), rng.random((2, 4, 16, 16, 3), np.float32)))
    assert float(logs["loss"]) == pytest.approx(float(logs["l1"]) + 0.25 * float(logs["adversarial"]), rel=1e-5)


def test_best_weights_only_at_a_better_validation_psnr(tmp_path):
    generator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    checkpoints = callbacks.Checkpoints(tmp_path, generator)
    for epoch, psnr in enumerate([20.0, 22.0, 21.0]):
        generator.layers[0].bias.assign([float(epoch)])
        checkpoints.on_epoch_end(epoch, {"val_psnr": psnr, "loss": 1.0})
    assert json.loads((tmp_path / "best.json").read_text())["epoch"] == 2
    best, last = (read_weights(tmp_path / f"{name}.weights.h5") for name in ("best", "last"))
    assert 1.0 in [float(a.ravel()[0]) for a in best if a.size == 1] and 2.0 in [float(a.ravel()[0]) for a in last if a.size == 1]


def test_a_collapsed_validation_stops_training_loudly(tmp_path, capsys):
    generator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    checkpoints = callbacks.Checkpoints(tmp_path, generator)
    stop = callbacks.StopOnCollapse(checkpoints)
    stop.set_model(generator)
    generator.stop_training = False  # as Model.fit sets it
    # Real runs' validation PSNR at the cpu budget in bf16: depth 4 collapsed for two epochs and
    # climbed back; 32 channels collapsed for good.
    depth_4 = [16.12, 17.89, 18.67, 18.94, 20.30, 6.53, 7.71, 17.75, 18.90]
    channels_32 = [21.52, 22.68, 23.51, 5.82, 5.45, 5.16]
    for epoch, psnr in enumerate(depth_4):
        checkpoints.on_epoch_end(epoch, {"val_psnr": psnr})
        stop.on_epoch_end(epoch, {"val_psnr": psnr})
    assert not generator.stop_training
    assert "collapsed at epoch 7: 7.71 dB against the best 20.30 (2 of 3" in capsys.readouterr().out
    for epoch, psnr in enumerate(channels_32, len(depth_4)):
        checkpoints.on_epoch_end(epoch, {"val_psnr": psnr})
        stop.on_epoch_end(epoch, {"val_psnr": psnr})
        assert generator.stop_training == (psnr == 5.16)
    assert json.loads((tmp_path / "best.json").read_text())["epoch"] == 12
    assert callbacks.first_collapse(depth_4) == 6 and callbacks.first_collapse(depth_4[:5]) is None


def test_training_stops_on_a_collapse(tiny_data, tmp_path, monkeypatch, capsys):
    # With a threshold below any drop every epoch counts as collapsed, so a run that holds the
    # guard ends after COLLAPSE_PATIENCE of its 5 epochs; without it, all 5 run.
    monkeypatch.setattr(callbacks, "COLLAPSE_DB", -math.inf)
    history = train.train(tiny_cfg(tiny_data, tmp_path, "experiment=collapse", "train.epochs=5"), verbose=0)
    assert len(history.history["loss"]) == callbacks.COLLAPSE_PATIENCE == 3
    assert "validation PSNR collapsed at epoch 3" in capsys.readouterr().out


def test_every_epoch_draws_its_own_crops(tiny_data, tmp_path, monkeypatch):
    epochs_seen = []
    plan_call = crops.SamplePlan.__call__
    monkeypatch.setattr(crops.SamplePlan, "__call__", lambda self: (epochs_seen.append(self.epoch), plan_call(self))[1])
    train.train(tiny_cfg(tiny_data, tmp_path, "train.epochs=3", "experiment=plans"), verbose=0)
    assert epochs_seen == [0, 1, 2]


def test_sample_plan_is_the_originals_and_depends_on_seed_and_epoch_only():
    class FakeClip:
        packed_raw = np.zeros((200, 1, 1, 4))

    smoid = config.load_config(overrides=["preset=smoid"])["train"]
    plan = crops.SamplePlan([FakeClip(), FakeClip()], smoid, seed=1)
    assert [start for _, start, _ in plan.samples[:46]] == list(range(0, 181, 4))  # 0, 4, ..., 180
    assert len(plan.samples) == 92 and plan.per_epoch == 92
    first = list(plan())
    assert all(0 <= start - 4 * (start // 4) < 4 for _, start, _ in first)
    plan.epoch = 1
    assert list(plan()) != first
    plan.epoch = 0
    assert list(plan()) == first


def test_bayer_preserving_augmentation_keeps_colours_and_pixels_aligned():
    """Every raw pixel carries its colour and position, every ground-truth pixel its position:
    after any flip or transpose, the crop must read GBRG and sit on the same scene pixels."""
    frames, height, width = 3, 20, 24
    rows, cols = np.mgrid[:height, :width]
    colour = np.vectorize("RGB".index)(np.tile(np.array(list(config.CFA)).reshape(2, 2), (height // 2, width // 2)))
    mosaic = np.broadcast_to(colour * 20000 + rows * 100 + cols, (frames, height, width)).astype(np.uint16)
    gt_rgb = np.stack([np.broadcast_to(rows, (frames, height, width)), np.broadcast_to(cols, (frames, height, width)),
                       np.broadcast_to(np.arange(frames)[:, None, None], (frames, height, width))], -1).astype(np.uint8)
    clip = data.Clip("coded", data.packed_from_mosaic(mosaic), gt_rgb, None, lambda x: x.astype(np.float32))
    cfa_colour = colour[:2, :2]
    for flips in itertools.product([False, True], repeat=4):
        packed, gt = crops.crop_pair(clip, 0, 2, 3, frames, 6, flips)
        assert packed.shape == (frames, 6, 6, 4) and gt.shape == (frames, 12, 12, 3)
        raw = data.mosaic_from_packed(packed).astype(int)
        assert np.array_equal(raw // 20000, np.tile(cfa_colour, (6, 6))[None].repeat(frames, 0)), flips
        gt = np.round(gt * 255).astype(int)
        assert np.array_equal((raw % 20000) // 100, gt[..., 0]) and np.array_equal(raw % 100, gt[..., 1]), flips
        assert gt[0, 0, 0, 2] == (frames - 1 if flips[0] else 0)


def test_end_crops_hold_a_clips_first_or_last_frame_mirrored_as_test_py_extends_it():
    """Crops of 4 frames from a 10-frame clip whose ground truth holds its frame number, with 8
    frames mirrored at test time: an end crop is the clip's first frames after 0 to 3 mirrored ones
    (no more, or the first frame would leave the crop), or one of these reversed (a last frame's
    view: the time flip). Without end crops, a crop starts where the plan says."""
    gt_rgb = np.broadcast_to(np.arange(10)[:, None, None, None], (10, 4, 4, 3)).astype(np.uint8)
    clip = data.Clip("numbered", np.zeros((10, 2, 2, 4), np.uint16), gt_rgb, None, lambda x: x.astype(np.float32))
    train_cfg = {**config.DEFAULTS["train"], "crop_frames": 4, "crop_size": 1, "still_probability": 0.0}
    ends = {(0, 1, 2, 3), (1, 0, 1, 2), (2, 1, 0, 1), (3, 2, 1, 0)}
    ends |= {end[::-1] for end in ends}

    def frame_numbers(end_probability, seed):
        _, gt = crops.random_crop_pair(clip, 5, np.random.default_rng(seed), {**train_cfg, "end_probability": end_probability}, 8)
        return tuple(np.round(gt[:, 0, 0, 0] * 255).astype(int))

    assert {frame_numbers(1.0, seed) for seed in range(200)} == ends
    assert {frame_numbers(0.0, seed) for seed in range(200)} == {(5, 6, 7, 8), (8, 7, 6, 5)}
    shares = [frame_numbers(0.3, seed) in ends for seed in range(2000)]
    assert 0.25 < np.mean(shares) < 0.35


@pytest.mark.parametrize("override, message", [
    ("loss.terms={l2: 1}", "unknown loss 'l2'"),
    ("model.depth=5", "model.depth must be one of"),
    ("train.crop_size=16", r"scene\d is 10 frames of 12x16 packed pixels, smaller than the crop of 4 frames of 17x17"),
    ("train.crop_frames=11", "smaller than the crop of 11 frames"),
    ("train.strategy=tpu", "train.strategy must be one of"),
    ("train.init_weights=missing.weights.h5", "train.init_weights: missing.weights.h5: no such weights file"),
])
def test_bad_config_stops_before_any_work(tiny_data, tmp_path, override, message):
    with pytest.raises((ValueError, KeyError, FileNotFoundError), match=message):
        train.train(tiny_cfg(tiny_data, tmp_path, override, "experiment=bad"), verbose=0)
    assert not (tmp_path / "bad").exists()


class InterruptAfterOneEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt


def test_a_resume_with_other_settings_stops_and_keeps_the_config_of_the_weights(tiny_data, tmp_path):
    """Resumed with another learning rate or model size, the run would end with a config.yaml that
    describes weights half of it did not make: it stops, naming what differs, and changes nothing.
    More epochs, or another precision, resume; --restart starts the unfinished run over."""
    cfg = tiny_cfg(tiny_data, tmp_path, "experiment=resize")
    with pytest.raises(KeyboardInterrupt):
        train.train(cfg, extra_callbacks=[InterruptAfterOneEpoch()], verbose=0)
    for override, named in (("model.base_channels=8", "model.base_channels: 4 -> 8"),
                            ("train.learning_rate=0.001", "train.learning_rate: 0.003 -> 0.001")):
        with pytest.raises(ValueError, match=f"unfinished run \\(after epoch 1\\) with other settings \\({named}\\)"):
            train.train(tiny_cfg(tiny_data, tmp_path, "experiment=resize", override), verbose=0)
    assert config.load_config(tmp_path / "resize" / "config.yaml")["model"]["base_channels"] == 4
    assert (tmp_path / "resize" / "backup").is_dir()
    with pytest.raises(KeyboardInterrupt):  # resumes: the second epoch of three
        train.train(tiny_cfg(tiny_data, tmp_path, "experiment=resize", "train.epochs=3", "model.precision=auto",
                             "test.tile_size=64"), extra_callbacks=[InterruptAfterOneEpoch()], verbose=0)
    assert len((tmp_path / "resize" / "log.csv").read_text().splitlines()) == 1 + 2
    history = train.train(tiny_cfg(tiny_data, tmp_path, "experiment=resize", "model.base_channels=8"), verbose=0, restart=True)
    assert len(history.history["loss"]) == 2 and not (tmp_path / "resize" / "backup").exists()
    assert len((tmp_path / "resize" / "log.csv").read_text().splitlines()) == 1 + 2
    assert config.load_config(tmp_path / "resize" / "config.yaml")["model"]["base_channels"] == 8


def test_a_resume_may_change_test_mirror_frames_only_where_end_crops_are_not_cut_with_it():
    ends = ["train.end_probability=0.3"]
    saved, now = config.load_config(overrides=ends), config.load_config(overrides=ends + ["test.mirror_frames=4"])
    assert train.changed_settings(saved, now) == ["test.mirror_frames: 8 -> 4"]
    assert train.changed_settings(config.load_config(), config.load_config(overrides=["test.mirror_frames=4"])) == []


def test_an_unreadable_backup_is_set_aside_and_the_run_starts_over(tiny_data, tmp_path, capsys):
    backup = tmp_path / "killed" / "backup"
    backup.mkdir(parents=True)
    (backup / "latest.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n truncated")  # killed mid-write
    (backup / "training_metadata.json").write_text('{"epoch": 1, "batch": 0}')
    history = train.train(tiny_cfg(tiny_data, tmp_path, "experiment=killed"), verbose=0)
    assert len(history.history["loss"]) == 2
    assert "cannot be read" in capsys.readouterr().out
    assert [p.name.startswith("backup.unreadable.") for p in (tmp_path / "killed").glob("backup*")] == [True]


def test_the_first_line_says_start_or_resume_and_a_finished_run_needs_restart(tiny_data, tmp_path, capsys):
    cfg = tiny_cfg(tiny_data, tmp_path, "experiment=visible")
    with pytest.raises(KeyboardInterrupt):
        train.train(cfg, extra_callbacks=[InterruptAfterOneEpoch()], verbose=0)
    assert capsys.readouterr().out.startswith("starting visible")
    train.train(cfg, verbose=0)
    assert capsys.readouterr().out.startswith("resuming visible after epoch 1 of 2")
    with pytest.raises(FileExistsError, match="holds a finished run .*pass --restart"):
        train.train(cfg, verbose=0)
    assert (tmp_path / "visible" / "log.csv").is_file()  # nothing deleted without --restart
    train.train(cfg, verbose=0, restart=True)
    assert "starting visible over the earlier run" in capsys.readouterr().out


def test_a_non_finite_loss_stops_training_with_what_to_do(tiny_data, tmp_path):
    cfg = tiny_cfg(tiny_data, tmp_path, "experiment=nan", "train.learning_rate=1e30")  # weights blow up at once
    with pytest.raises(FloatingPointError, match=r"diverged at batch \d+: .*(nan|inf).*train.clip_norm"):
        train.train(cfg, verbose=0)


def test_learning_rate_warms_up_linearly_then_drops():
    """Steps 0-3 of a 4-step warm-up take 1/4 .. 4/4 of the rate; the drop at epoch 2 of 10 steps
    still comes after step 20 (PiecewiseConstantDecay's boundary), by hand."""
    train_cfg = {"learning_rate": 0.4, "lr_drop_epoch": 2, "lr_drop_factor": 0.5, "warmup_steps": 4}
    schedule = callbacks.learning_rate(train_cfg, steps_per_epoch=10)
    rates = [float(schedule(step)) for step in (0, 1, 2, 3, 4, 19, 20, 21)]
    np.testing.assert_allclose(rates, [0.1, 0.2, 0.3, 0.4, 0.4, 0.4, 0.4, 0.2], rtol=1e-6)
    no_warmup = callbacks.learning_rate({**train_cfg, "warmup_steps": 0}, steps_per_epoch=10)
    assert float(no_warmup(0)) == pytest.approx(0.4)


def test_a_second_train_py_of_a_running_experiment_stops_at_once(tiny_data, tmp_path):
    """While one process trains an experiment (it holds the folder's lock), train() of the same
    experiment stops with one line, before writing anything; once that process is killed (kill -9
    runs no clean-up), the lock is free again."""
    folder = tmp_path / "busy"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        sys.path.insert(0, {str(Path(train.__file__).parent)!r})
        import train
        with train.one_writer(Path({str(folder)!r})):
            print("holding", flush=True)
            time.sleep(120)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(ValueError, match=rf"another train.py is training this experiment now \(PID {holder.pid}\)"):
            train.train(tiny_cfg(tiny_data, tmp_path, "experiment=busy"), verbose=0)
        assert sorted(p.name for p in folder.iterdir()) == [train.LOCK_FILE]
    finally:
        holder.kill()
        holder.wait()
    with train.one_writer(folder):
        pass
