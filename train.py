"""Train the 3D U-Net on the clips of `file_list`, validating on `valid_list`.

    python train.py [--config FILE] [--set preset=smoid model.resnet=true ...]

Everything lands in train.checkpoint_root/EXPERIMENT/: last and best generator weights beside the
config that built them, log.csv, TensorBoard logs, preview videos, and a backup from which an
interrupted run resumes where it stopped (weights, optimizer state, epoch). The first line says
which: "resuming EXPERIMENT after epoch N" (run the same command again after a crash or a kill) or
"starting EXPERIMENT". A resume with settings other than the run began with (but more epochs, or
another precision or device) stops, naming them. Over a finished run it stops unless given
--restart, which starts again from scratch, over a finished or unfinished run, and deletes the old
backup, log and best score.
"""
import argparse
import contextlib
import fcntl
import json
import os
import shutil
import sys
from pathlib import Path

import cli  # before TensorFlow: config.py, which it imports, makes TensorFlow load without its start-up lines
import keras
import numpy as np
import tensorflow as tf
import yaml

import callbacks
import crops
import losses
import metrics
import network


# ---------------------------------------------------------------------------------------------
# Input pipeline


def training_dataset(clips, plan, train_cfg, mirror_frames):
    frames, size = train_cfg["crop_frames"], train_cfg["crop_size"]

    def load(index, start, sample_seed):
        rng = np.random.default_rng(sample_seed)
        return crops.random_crop_pair(clips[index], start, rng, train_cfg, mirror_frames)

    def load_tensors(index, start, sample_seed):
        packed, gt_rgb = tf.numpy_function(load, [index, start, sample_seed], (tf.float32, tf.float32), stateful=False)
        packed.set_shape((frames, size, size, 4))
        gt_rgb.set_shape((frames, 2 * size, 2 * size, 3))
        return packed, gt_rgb

    spec = tf.TensorSpec((), tf.int64)
    samples = tf.data.Dataset.from_generator(plan, output_signature=(spec, spec, spec))
    samples = samples.apply(tf.data.experimental.assert_cardinality(plan.per_epoch))
    pairs = samples.map(load_tensors, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return pairs.batch(train_cfg["batch_size"], drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def validation_dataset(packed, gt_rgb, batch_size):
    """Whole batches only: the last one is filled up with crops repeated at weight 0, because a
    multi-worker run cannot split a partial batch (one worker would get an empty one)."""
    index = np.arange(len(packed) + (-len(packed) % batch_size)) % len(packed)
    weight = (np.arange(len(index)) < len(packed)).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices((packed[index], gt_rgb[index], weight)).batch(batch_size)


# ---------------------------------------------------------------------------------------------
# Model and training step


class TrainingModel(keras.Model):
    """The generator, and for the GAN variant the discriminator, with the training step of the
    original: one discriminator step, then one generator step. Losses are averaged over the
    global batch, so that gradients summed over devices equal those of one device."""

    def __init__(self, generator, loss_fn, loss_terms, global_batch, discriminator=None, adversarial_weight=1.0):
        super().__init__()
        self.generator, self.discriminator = generator, discriminator
        self.loss_fn, self.global_batch, self.adversarial_weight = loss_fn, global_batch, adversarial_weight
        names = ["loss", *loss_terms] + (["adversarial", "d_loss"] if discriminator is not None else [])
        self.train_trackers = {name: keras.metrics.Mean(name=name) for name in names}
        self.val_trackers = {name: keras.metrics.Mean(name=name) for name in ["loss", *loss_terms, "psnr", "ssim"]}

    def call(self, packed, training=False):
        return self.generator(packed, training=training)

    def compile(self, optimizer, d_optimizer=None, jit_compile=False):
        super().compile(optimizer=optimizer, jit_compile=jit_compile)
        self.d_optimizer = d_optimizer
        # Built here, on the variables each one updates, so that a backup restores both exactly.
        optimizer.build(self.generator.trainable_variables)
        if d_optimizer is not None:
            d_optimizer.build(self.discriminator.trainable_variables)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras averages a distributed batch eagerly here only to build what build() and compile()
        # have built already, and under MultiWorkerMirroredStrategy that average fails
        # (keras-team/keras#20585): skip it once the model is built.
        if not self.built:
            super()._maybe_symbolic_build(iterator, data_batch)

    @property
    def metrics(self):
        return list(self.train_trackers.values()) + list(self.val_trackers.values())

    def _average(self, per_example):
        return tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch)

    def train_step(self, batch):
        packed, gt_rgb = batch
        batch_size = tf.shape(packed)[0]
        values = {}
        if self.discriminator is not None:
            fake_rgb = self.generator(packed, training=True)
            with tf.GradientTape() as tape:
                real_logits = self.discriminator(losses.frames_as_batch(gt_rgb), training=True)
                fake_logits = self.discriminator(losses.frames_as_batch(fake_rgb), training=True)
                d_loss = losses.discriminator_loss(real_logits, fake_logits, batch_size)
                d_average = self._average(d_loss)
            variables = self.discriminator.trainable_variables
            self.d_optimizer.apply_gradients(zip(tape.gradient(d_average, variables), variables))
            values["d_loss"] = d_loss
        with tf.GradientTape() as tape:
            rgb = self.generator(packed, training=True)
            total, terms = self.loss_fn(gt_rgb, rgb)
            if self.discriminator is not None:
                logits = self.discriminator(losses.frames_as_batch(rgb), training=True)
                terms["adversarial"] = losses.generator_adversarial_loss(logits, batch_size)
                total += self.adversarial_weight * terms["adversarial"]
            average = self._average(total)
        variables = self.generator.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(average, variables), variables))
        return self._track(self.train_trackers, {"loss": total, **terms, **values})

    def test_step(self, batch):
        """Validation loss, and PSNR / SSIM as test.py measures them: on the uint8 levels the
        output is saved as, per frame, then averaged over frames and clips."""
        packed, gt_rgb, weight = keras.utils.unpack_x_y_sample_weight(batch)
        rgb = tf.clip_by_value(self.generator(packed, training=False), 0.0, 1.0)
        total, terms = self.loss_fn(gt_rgb, rgb)
        values = {"loss": total, **terms, "psnr": metrics.video_psnr(gt_rgb, rgb), "ssim": metrics.video_ssim(gt_rgb, rgb)}
        return self._track(self.val_trackers, values, weight)

    def _track(self, trackers, values, weight=None):
        for name, value in values.items():
            trackers[name].update_state(value, sample_weight=weight)
        results = {name: trackers[name].result() for name in values}
        if isinstance(self.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
            # Keras averages multi-worker logs along an axis 0 that scalars lack (keras-team/keras#20585).
            return {name: tf.reshape(result, [1]) for name, result in results.items()}
        return results


def make_strategy(name):
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def build_enhancer(cfg, loss_fn, steps_per_epoch):
    train_cfg, gan_cfg = cfg["train"], cfg["gan"]
    generator = network.build_unet(cfg["model"])
    discriminator = None
    if gan_cfg["enabled"]:
        size = 2 * train_cfg["crop_size"]
        discriminator = network.build_discriminator(gan_cfg, size, size, network.dtype_policy(cfg["model"]))
    model = TrainingModel(generator, loss_fn, list(cfg["loss"]["terms"]), train_cfg["batch_size"],
                     discriminator, gan_cfg["adversarial_weight"])
    schedule = callbacks.learning_rate(train_cfg, steps_per_epoch)
    ema = train_cfg["ema_momentum"]
    generator_optimizer = keras.optimizers.Adam(schedule, clipnorm=train_cfg["clip_norm"],
                                                use_ema=ema is not None, ema_momentum=ema or 0.99)
    model.compile(generator_optimizer,
                  keras.optimizers.Adam(callbacks.learning_rate(train_cfg, steps_per_epoch)) if discriminator else None,
                  jit_compile=train_cfg["jit_compile"])
    model.build((None, train_cfg["crop_frames"], train_cfg["crop_size"], train_cfg["crop_size"], 4))
    return model


# ---------------------------------------------------------------------------------------------


def experiment_folder(cfg, strategy=None):
    """Where a run writes. In a multi-worker run the chief writes there; every other worker keeps
    its own copy in worker<N>/ below it, its backup included, so that each can resume."""
    folder = Path(cfg["train"]["checkpoint_root"]) / cfg["experiment"]
    if strategy is None or strategy.extended.should_checkpoint:
        return folder
    return folder / f"worker{strategy.cluster_resolver.task_id}"


# What a resumed run may change: how long it goes on and how it runs, not what it learns.
RESUME_MAY_CHANGE = ("train.epochs", "train.preview_every", "train.strategy", "train.jit_compile",
                     "train.deterministic", "model.precision", "test.")


def flat_settings(cfg, prefix=""):
    """{'section.key': value} of a nested configuration."""
    settings = {}
    for key, value in cfg.items():
        settings.update(flat_settings(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return settings


def resume_may_change(key, cfg):
    """Whether a resume may change this setting: those in RESUME_MAY_CHANGE, but test.mirror_frames
    where end crops (train.end_probability) are cut with it."""
    if key == "test.mirror_frames":
        return cfg["train"]["end_probability"] == 0
    return key.startswith(RESUME_MAY_CHANGE)


def changed_settings(saved, cfg):
    """'key: saved -> now' for each setting in which cfg differs from a run's saved config and that
    a resume may not change."""
    before, now = flat_settings(saved), flat_settings(cfg)
    return [f"{key}: {before.get(key)!r} -> {now.get(key)!r}" for key in sorted(before.keys() | now.keys())
            if before.get(key) != now.get(key) and not resume_may_change(key, cfg)]


LOCK_FILE = "train.lock"


def start_or_resume(folder, cfg, restart):
    """Say what this run does, first: resume the unfinished run in `folder` (its backup), start a
    new one, or, only with `restart`, start over an earlier one, whose backup, log and best score
    go. A resume with other settings than the run began with stops: its config.yaml would describe
    weights that half of the run did not make."""
    backup = folder / "backup"
    callbacks.set_aside_unreadable_backup(backup)
    if backup.is_dir() and not restart:
        done = json.loads((backup / "training_metadata.json").read_text())["epoch"]
        saved = folder / "config.yaml"
        changed = changed_settings(yaml.safe_load(saved.read_text()), cfg) if saved.is_file() else []
        if changed:
            raise ValueError(f"{folder} is an unfinished run (after epoch {done}) with other settings "
                             f"({'; '.join(changed)}): rerun it with the settings it began with (train.epochs "
                             "may change), or pass --restart to train it again from scratch")
        if done >= cfg["train"]["epochs"]:
            raise ValueError(f"{folder} is an unfinished run that has already trained {done} epochs, and train.epochs "
                             f"is {cfg['train']['epochs']}: give a larger train.epochs to go on")
        print(f"resuming {cfg['experiment']} after epoch {done} of {cfg['train']['epochs']} ({folder})")
        return
    earlier = [folder / name for name in ("log.csv", "best.json") if (folder / name).exists()]
    if earlier and not restart:
        raise FileExistsError(f"{folder} holds a finished run ({', '.join(p.name for p in earlier)}): pass --restart "
                              "to train it again from scratch (its log and best score are deleted), or set another experiment")
    over = earlier or backup.is_dir()
    if backup.is_dir():  # here only with restart
        shutil.rmtree(backup)
    for path in earlier:
        path.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    print(f"starting {cfg['experiment']}{' over the earlier run' if over else ''} ({folder})")


def train(cfg, extra_callbacks=(), verbose="auto", restart=False):
    """Run (or resume) the configured training; returns the Keras History. Over a finished run
    it stops unless `restart`."""
    train_cfg = cfg["train"]
    train_clips, valid_clips = crops.training_clips(cfg)
    loss_fn = losses.make_loss(cfg["loss"])  # a missing VGG file stops here, before any work

    keras.utils.set_random_seed(cfg["seed"])
    if train_cfg["deterministic"]:
        tf.config.experimental.enable_op_determinism()
    plan = crops.SamplePlan(train_clips, train_cfg, cfg["seed"])
    steps_per_epoch = plan.per_epoch // train_cfg["batch_size"]
    strategy = make_strategy(train_cfg["strategy"])
    with strategy.scope():
        model = build_enhancer(cfg, loss_fn, steps_per_epoch)
    if train_cfg["init_weights"]:
        network.load_initial_weights(model.generator, cfg["model"], train_cfg["init_weights"])

    folder = experiment_folder(cfg, strategy)
    with one_writer(folder):
        start_or_resume(folder, cfg, restart)
        return fit(model, cfg, folder, train_clips, valid_clips, plan, extra_callbacks, verbose)


@contextlib.contextmanager
def one_writer(folder):
    """Hold the experiment folder's lock (an flock on LOCK_FILE, which the system releases when the
    process ends, a kill included): a second train.py of the same experiment stops at once instead
    of writing the same checkpoints."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_FILE, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise ValueError(f"{folder}: another train.py is training this experiment now (PID {lock.read().strip() or '?'}); "
                             "wait for it to finish, or set another experiment") from None
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        yield


def fit(model, cfg, folder, train_clips, valid_clips, plan, extra_callbacks, verbose):
    """model.fit with the standard callbacks, every file in `folder`."""
    train_cfg = cfg["train"]
    policy, why = network.resolve_precision(cfg["model"])
    print(f"precision: {policy} ({why})")
    valid_packed, valid_gt = crops.validation_arrays(valid_clips, train_cfg)
    run_callbacks = [
        keras.callbacks.BackupAndRestore(folder / "backup", double_checkpoint=True),
        callbacks.SaveConfig(folder / "config.yaml", cfg, f"precision: {policy} ({why})\nmachine: {network.machine()}"),  # once the backup has loaded
        # With train.ema_momentum, validation and the callbacks below see the averaged weights;
        # the backup above keeps the raw ones, so a resumed run goes on from them.
        *callbacks.run_guards(plan, folder, model.generator, train_cfg["ema_momentum"]),
        keras.callbacks.CSVLogger(folder / "log.csv", append=True),
        keras.callbacks.TensorBoard(folder / "tensorboard", write_graph=False),
        callbacks.Preview(folder / "preview", valid_packed[0], valid_gt[0], train_cfg["preview_every"],
                valid_clips[0].fps or cfg["test"]["fps"]),
        *extra_callbacks,
    ]
    return model.fit(training_dataset(train_clips, plan, train_cfg, cfg["test"]["mirror_frames"]), epochs=train_cfg["epochs"],
                     validation_data=validation_dataset(valid_packed, valid_gt, train_cfg["batch_size"]),
                     callbacks=run_callbacks, verbose=verbose, shuffle=False)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--restart", action="store_true",
                        help="train again from scratch over a finished or unfinished run of the same experiment (deletes its log and backup)")
    cli.add_arguments(parser)
    args = parser.parse_args(argv)
    cfg = cli.from_args(args)
    # One line an epoch where the output goes to a file: the progress bar would fill it with carriage returns.
    history = train(cfg, restart=args.restart, verbose="auto" if sys.stdout.isatty() else 2)
    last = {k: round(v[-1], 4) for k, v in history.history.items() if k.startswith("val_")}
    print(f"validation after the last epoch: {last}")
    print(f"weights, logs and previews: {experiment_folder(cfg)}")


if __name__ == "__main__":
    cli.run_script(main)
