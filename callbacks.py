"""The training run's own Keras callbacks: atomic checkpoints, the run's config, previews, epoch
times, the sample plan's epoch and loud stops on NaN and on collapse; the learning-rate schedule;
and the check that a resumable backup can be read at all. Nothing here needs TensorFlow (lab/train_jax.py uses it too)."""
import json
import math
import time
from pathlib import Path

import h5py
import keras
import numpy as np
import yaml

import cli
from atomic import atomic_output


def save_weights(model, path):
    with atomic_output(path) as tmp:
        model.save_weights(tmp)


def set_aside_unreadable_backup(backup):
    """A run killed while writing its first backup leaves files Keras cannot load, and every resume
    would fail on them: move such a backup aside, say so, and let the run start over."""
    if not backup.is_dir():
        return
    for suffix in ("", ".bkp"):  # Keras' double checkpoint falls back on the .bkp pair
        try:
            with h5py.File(backup / f"latest.weights.h5{suffix}", "r"):
                json.loads((backup / f"training_metadata.json{suffix}").read_text())
            return
        except (OSError, ValueError):
            continue
    aside = backup.with_name(f"backup.unreadable.{time.strftime('%Y%m%d-%H%M%S')}")
    backup.rename(aside)
    print(f"warning: the backup in {backup} cannot be read (the run was killed while writing it?); "
          f"moved it to {aside} and starting this run over")


class SaveConfig(keras.callbacks.Callback):
    """config.yaml of the run, written when training begins: after BackupAndRestore has loaded a
    resumed run's state, so a resume that fails (another model size) leaves the old file intact."""

    def __init__(self, path, cfg, comment):
        super().__init__()
        self.path, self.cfg, self.comment = Path(path), cfg, comment

    def on_train_begin(self, logs=None):
        with atomic_output(self.path) as tmp:
            tmp.write_text("".join(f"# {line}\n" for line in self.comment.splitlines()) + yaml.safe_dump(self.cfg, sort_keys=False))


class EpochTimer(keras.callbacks.Callback):
    """Adds `epoch_seconds` (training and validation) to the epoch's logs, so log.csv keeps the
    wall time of every epoch, across resumes."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        logs["epoch_seconds"] = time.monotonic() - self.start


class Checkpoints(keras.callbacks.Callback):
    """The generator's weights: last.weights.h5 after every epoch, best.weights.h5 at the best
    validation PSNR, each with a .json saying when and how good (last.json, best.json), each
    written atomically."""

    def __init__(self, folder, generator):
        super().__init__()
        self.folder, self.generator = Path(folder), generator
        best = self.folder / "best.json"
        self.best = json.loads(best.read_text())["val_psnr"] if best.is_file() else -math.inf

    def on_epoch_end(self, epoch, logs=None):
        scores = json.dumps({"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}}, indent=1)
        self.save("last", scores)
        if logs.get("val_psnr", -math.inf) > self.best:
            self.best = float(logs["val_psnr"])
            self.save("best", scores)

    def save(self, name, scores):
        save_weights(self.generator, self.folder / f"{name}.weights.h5")
        with atomic_output(self.folder / f"{name}.json") as tmp:
            tmp.write_text(scores)


# Validation PSNR this far below the run's best means the weights have collapsed (a loss spike);
# noise between epochs is a fraction of a dB. Adam sometimes climbs back within an epoch or two,
# so a run stops only after COLLAPSE_PATIENCE collapsed epochs in a row.
COLLAPSE_DB = 10.0
COLLAPSE_PATIENCE = 3


def collapsed(best_psnr, psnr):
    return best_psnr - psnr > COLLAPSE_DB


def first_collapse(val_psnrs):
    """The first epoch (from 1) of a log whose validation PSNR had collapsed, or None."""
    best = -math.inf
    for epoch, psnr in enumerate(val_psnrs, 1):
        best = max(best, psnr)
        if collapsed(best, psnr):
            return epoch
    return None


class StopOnCollapse(keras.callbacks.Callback):
    """Warns at every epoch whose validation PSNR has collapsed below the best one's, and stops the
    run after COLLAPSE_PATIENCE in a row: the epochs left would train on from broken weights, and
    best.weights.h5 already holds the best. Goes after `checkpoints`, whose `best` then includes
    this epoch."""

    def __init__(self, checkpoints):
        super().__init__()
        self.checkpoints, self.in_a_row = checkpoints, 0

    def on_epoch_end(self, epoch, logs=None):
        if "val_psnr" not in logs or not collapsed(self.checkpoints.best, float(logs["val_psnr"])):
            self.in_a_row = 0
            return
        self.in_a_row += 1
        print(f"warning: validation PSNR collapsed at epoch {epoch + 1}: {float(logs['val_psnr']):.2f} dB against "
              f"the best {self.checkpoints.best:.2f} ({self.in_a_row} of {COLLAPSE_PATIENCE} epochs in a row before "
              "the run stops; best.weights.h5 keeps the best epoch). Lower train.learning_rate or set "
              "train.clip_norm (the shipped recipe uses 1.0).")
        if self.in_a_row == COLLAPSE_PATIENCE:
            self.model.stop_training = True


class Preview(keras.callbacks.Callback):
    """Every `every` epochs, preview/epoch_NNN.mp4 of the first validation crop: the network's
    input, its output and the ground truth side by side."""

    def __init__(self, folder, packed, gt_rgb, every, fps):
        super().__init__()
        self.folder, self.packed, self.gt_rgb, self.every, self.fps = Path(folder), packed, gt_rgb, every, fps

    def on_epoch_end(self, epoch, logs=None):
        from video_io import input_preview, to_uint8, write_video  # here: the GPU machines have no ffmpeg

        if self.every and (epoch + 1) % self.every == 0:
            rgb = to_uint8(self.model.generator(self.packed[None], training=False)[0].numpy())
            side_by_side = np.concatenate([input_preview(self.packed), rgb, to_uint8(self.gt_rgb)], axis=2)
            self.folder.mkdir(parents=True, exist_ok=True)
            write_video(self.folder / f"epoch_{epoch + 1:03d}.mp4", side_by_side, self.fps)


class StopOnNonFinite(keras.callbacks.TerminateOnNaN):
    """Keras' TerminateOnNaN, but loud: it raises with what to do instead of quietly stopping, and
    looks at every logged term, not only the total loss."""

    def on_batch_end(self, batch, logs=None):
        bad = {k: float(v) for k, v in (logs or {}).items() if not np.isfinite(float(v))}
        if bad:
            raise FloatingPointError(
                f"training diverged at batch {batch}: {bad}. Lower train.learning_rate or set train.clip_norm, or "
                "check the data (a clip that is all black or saturated); the last good epoch's state is in the backup.")


class StopOnSignal(keras.callbacks.Callback):
    """Ends training at the next batch after a kill or Ctrl-C (cli.run_script). Keras converts
    each batch's logs inside a bare `except:`, and on JAX the conversion waits for the step: the
    exception the signal raised there was swallowed, and training went on."""

    def on_train_batch_end(self, batch, logs=None):
        if cli.STOP_REQUESTS:
            raise cli.STOP_REQUESTS[0]

    on_test_batch_end = on_train_batch_end


class EpochTracker(keras.callbacks.Callback):
    def __init__(self, plan):
        super().__init__()
        self.plan = plan

    def on_epoch_begin(self, epoch, logs=None):
        self.plan.epoch = epoch


def run_guards(plan, folder, generator, ema_momentum):
    """The callbacks train.py and lab/train_jax.py share, in their order: the averaged weights swapped
    in for validation (with train.ema_momentum), the plan's epoch, the loud stops, the epoch's time
    (before the callbacks that write the logs), the generator's checkpoints in `folder` and the stop
    on a collapse, which reads their best."""
    checkpoints = Checkpoints(folder, generator)
    return [*([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if ema_momentum else []),
            EpochTracker(plan), StopOnNonFinite(), StopOnSignal(), EpochTimer(), checkpoints,
            StopOnCollapse(checkpoints)]


def learning_rate(train_cfg, steps_per_epoch):
    """The original's schedule: `learning_rate`, times `lr_drop_factor` from `lr_drop_epoch` on,
    rising linearly over the first `warmup_steps`. A function of the optimizer's step, so a resumed
    run continues on the same schedule."""
    lr = float(train_cfg["learning_rate"])  # YAML reads `0` or `1` as an integer
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        [train_cfg["lr_drop_epoch"] * steps_per_epoch], [lr, lr * float(train_cfg["lr_drop_factor"])])
    return WarmUp(schedule, train_cfg["warmup_steps"]) if train_cfg["warmup_steps"] else schedule


class WarmUp(keras.optimizers.schedules.LearningRateSchedule):
    """`schedule`, times (step + 1) / `steps` over the first `steps` steps."""

    def __init__(self, schedule, steps):
        self.schedule, self.steps = schedule, steps

    def __call__(self, step):
        ramp = keras.ops.minimum(1.0, (keras.ops.cast(step, "float32") + 1.0) / self.steps)
        return self.schedule(step) * ramp


