"""lab/train_jax.py (Keras on JAX) trains like train.py (Keras on TensorFlow), and lab/device_data.py carries
clips to a machine without the footage."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

import callbacks
import cli
import config
import data
import network
import train
from lab import device_data, train_jax
from test_train import read_weights, tiny_cfg, tiny_data  # noqa: F401 (tiny_data is a fixture)


class StepLosses(keras.callbacks.Callback):
    """The mean loss so far after every step, as Keras logs it."""

    def __init__(self):
        super().__init__()
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))


def run_on_jax(cfg_path, minutes=None):
    """train_jax.train in a fresh process on the JAX backend: its step losses and epochs."""
    script = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(Path(train_jax.__file__).parents[1])!r})
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import keras, config
        from lab import train_jax
        from test_train_jax import StepLosses
        steps = StepLosses()
        history = train_jax.train(config.load_config({str(cfg_path)!r}), minutes={minutes!r}, workers=2,
                                  extra_callbacks=[steps], verbose=0)
        print(json.dumps({{"backend": keras.backend.backend(), "losses": steps.losses,
                          "epochs": len(history.history["loss"])}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "KERAS_BACKEND": "jax"})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_cfg(cfg, path):
    path.write_text(json.dumps(cfg))  # JSON is YAML
    return path


def test_jax_training_takes_the_same_steps_as_tensorflow_and_saves_the_same_weights(tiny_data, tmp_path):  # noqa: F811
    start = tmp_path / "start.weights.h5"  # each backend draws its own random initial weights
    network.build_unet(tiny_cfg(tiny_data, tmp_path)["model"]).save_weights(start)
    cfg = tiny_cfg(tiny_data, tmp_path, "experiment=tf", "train.preview_every=0", f"train.init_weights={start}")
    steps = StepLosses()
    train.train(cfg, extra_callbacks=[steps], verbose=0)
    on_jax = run_on_jax(write_cfg({**cfg, "experiment": "jax"}, tmp_path / "jax.yaml"))

    assert on_jax["backend"] == "jax" and len(on_jax["losses"]) == len(steps.losses) == 12
    np.testing.assert_allclose(on_jax["losses"], steps.losses, rtol=1e-4)  # the same crops, updates and losses
    tf_weights, jax_weights = read_weights(tmp_path / "tf" / "last.weights.h5"), read_weights(tmp_path / "jax" / "last.weights.h5")
    assert len(jax_weights) == len(tf_weights)  # the generator's weights alone, no optimizer state
    assert max(np.abs(a - b).max() for a, b in zip(tf_weights, jax_weights)) < 1e-4
    generator = network.build_unet(cfg["model"])
    network.load_weights(generator, cfg["model"], tmp_path / "jax" / "best.weights.h5")  # test.py's path
    assert json.loads((tmp_path / "jax" / "best.json").read_text())["val_psnr"] > 0
    assert config.load_config(tmp_path / "jax" / "config.yaml")["experiment"] == "jax"


def test_minutes_end_the_run_at_the_last_epoch_that_fits(tiny_data, tmp_path):  # noqa: F811
    cfg = tiny_cfg(tiny_data, tmp_path, "experiment=short", "train.epochs=5")
    assert run_on_jax(write_cfg(cfg, tmp_path / "short.yaml"), minutes=1e-4)["epochs"] == 1


@pytest.mark.parametrize("overrides, message", [
    (["gan.enabled=true"], "train the GAN variant with train.py"),
    (["loss.ms_ssim=true", "train.crop_size=96"], "MS-SSIM is TensorFlow's"),
    (["train.strategy=mirrored"], "trains on one device"),
])
def test_what_only_tensorflow_trains_is_refused_up_front(overrides, message):
    with pytest.raises(ValueError, match=message):
        train_jax.check_supported(config.load_config(overrides=overrides))


def unpacked_config(root):
    """The configuration of a machine that unpacks into `root`: raw/, gt/ and the lists."""
    return config.load_config(overrides=[f"data.input_dir={root / 'raw'}", f"data.gt_dir={root / 'gt'}",
                                         f"data.lists_dir={root}"])


def test_packed_clips_unpack_to_the_same_scenes_and_cameras_with_fresh_noise(tiny_data, tmp_path):  # noqa: F811
    cfg = config.load_config(overrides=tiny_data)
    device_data.pack(cfg, tmp_path / "packed")
    device_data.unpack(unpacked_config(tmp_path), tmp_path / "packed")
    for list_name in device_data.LISTS:
        here = data.read_file_list(Path(cfg["data"]["lists_dir"]) / list_name)
        unpacked = data.read_file_list(tmp_path / list_name)
        assert [name for name, *_ in unpacked] == [name for name, *_ in here] and here
        for (name, gt_path, input_path), (_, new_gt_path, new_input_path) in zip(here, unpacked):
            gt, new_gt = np.load(gt_path), np.load(new_gt_path)
            assert new_gt.shape == gt.shape and peak_signal_noise_ratio(gt, new_gt) > 30, name  # real clips: 36-44 dB
            assert data.load_sidecar(new_input_path) == data.load_sidecar(input_path)
            raw, new_raw = np.load(input_path).astype(np.float64), np.load(new_input_path).astype(np.float64)
            assert new_raw.shape == raw.shape and not np.array_equal(new_raw, raw)  # fresh noise
            np.testing.assert_allclose(new_raw.mean(axis=(0, 1, 2)), raw.mean(axis=(0, 1, 2)), rtol=0.02)


def test_unpacking_in_one_process_or_several_gives_the_same_clips(tiny_data, tmp_path):  # noqa: F811
    device_data.pack(config.load_config(overrides=tiny_data), tmp_path / "packed")
    unpacked = {}
    for workers in (1, 3):
        there = tmp_path / str(workers)
        device_data.unpack(unpacked_config(there), tmp_path / "packed", workers=workers)
        unpacked[workers] = {path.relative_to(there): path.read_bytes()
                             for folder in ("raw", "gt") for path in sorted((there / folder).rglob("*")) if path.is_file()}
    assert unpacked[1] and unpacked[1] == unpacked[3]


class FakePlan:
    """A sample plan of `per_epoch` samples (clip 0, start i, seed i) whose epoch a test sets."""

    def __init__(self, per_epoch):
        self.per_epoch, self.epoch = per_epoch, 0

    def __call__(self):
        return ((0, i + 100 * self.epoch, i) for i in range(self.per_epoch))


def test_batches_are_cut_ahead_in_the_plans_order(monkeypatch):
    """Each crop takes 20 ms to cut and each step 40 ms to train: reading ahead, the cutting hides
    behind the training, where cutting in series would add it."""
    def slow_crop(clip, start, rng, train_cfg, mirror_frames):
        time.sleep(0.02)
        return np.full((1,), start, np.float32), np.full((1,), start, np.float32)

    monkeypatch.setattr(train_jax.crops, "random_crop_pair", slow_crop)
    train_cfg = {"batch_size": 2}
    plan = FakePlan(per_epoch=20)
    with ThreadPoolExecutor(4) as pool:
        batches = train_jax.CropBatches([None], plan, train_cfg, 0, pool, read_ahead=4)
        begin = time.monotonic()
        starts = []
        for index in range(len(batches)):
            starts += batches[index][0].ravel().tolist()
            time.sleep(0.04)  # the training step
        seconds = time.monotonic() - begin
        plan.epoch = 1
        assert batches[0][0].ravel().tolist() == [100, 101]  # a new epoch's plan
    assert starts == list(range(20))
    assert seconds < 10 * 0.04 + 0.2, seconds  # in series: 10 * (0.04 + 0.04) = 0.8 s


def test_a_damaged_packed_clip_is_one_line_that_names_it(tiny_data, tmp_path, capsys, run_script):  # noqa: F811
    device_data.pack(config.load_config(overrides=tiny_data), tmp_path / "packed")
    video = sorted((tmp_path / "packed").glob("*.mp4"))[0]
    video.write_bytes(video.read_bytes()[:100])
    with pytest.raises(SystemExit) as exited:
        run_script(lambda: device_data.unpack(unpacked_config(tmp_path), tmp_path / "packed", workers=2))
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"error: {video}: OpenCV cannot read it as a video"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_kill_that_keras_swallowed_is_raised_again_at_the_next_batch(monkeypatch, signum, run_script):
    def main():
        try:
            signal.raise_signal(signum)
        except:  # noqa: E722 (as keras.utils.python_utils.pythonify_logs does)
            pass
        callbacks.StopOnSignal().on_train_batch_end(0)

    monkeypatch.setattr(cli, "STOP_REQUESTS", [])
    with pytest.raises(SystemExit) as stop:  # Ctrl-C too: run_script says so in one line
        run_script(main)
    assert stop.value.code == 128 + signum


def test_a_killed_run_stops_at_once(tiny_data, tmp_path):  # noqa: F811
    """Keras converts each batch's logs inside a bare `except:`; a SIGTERM that arrives while that
    waits for a JAX step raises there and was swallowed, and training went on."""
    cfg = tiny_cfg(tiny_data, tmp_path, "train.epochs=1000", "model.base_channels=64", "train.crop_frames=8")
    command = [sys.executable, "-m", "lab.train_jax", "--config", str(write_cfg(cfg, tmp_path / "long.yaml"))]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**os.environ, "KERAS_BACKEND": "jax",
                                    "PYTHONPATH": str(Path(train_jax.__file__).parents[1])})
    log = tmp_path / cfg["experiment"] / "log.csv"
    deadline = time.monotonic() + 120
    while (not log.exists() or len(log.read_text().splitlines()) < 3) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1][-2000:]
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(30) == 128 + signal.SIGTERM
    finally:
        process.kill()
