"""Train the generator on Keras' JAX backend: for a machine with a GPU and JAX but no TensorFlow
(the lent GPU machines). The same configuration, clips, crops, network, losses and checkpoint files
as train.py; the plain generator on one device (no GAN, no distribution strategy, no MS-SSIM).

    python -m lab.train_jax [--config FILE] [--set ...] [--minutes M]

Writes into train.checkpoint_root/EXPERIMENT/ what test.py reads: best.weights.h5 (at the best
validation PSNR) with best.json, last.weights.h5, config.yaml and log.csv. With --minutes it ends
at the last epoch that fits in that many minutes of training: a lent machine's time is fixed.
There is no backup to resume from, since a lent machine does not outlast its session (train.py
resumes); over a finished run it stops.
"""
import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __name__ == "__main__":  # as a script, Keras on JAX unless KERAS_BACKEND says otherwise (imported, the importer's)
    os.environ.setdefault("KERAS_BACKEND", "jax")  # before Keras is imported
import keras  # noqa: E402
import numpy as np  # noqa: E402

import callbacks  # noqa: E402
import cli  # noqa: E402
import crops  # noqa: E402
import losses  # noqa: E402
import metrics  # noqa: E402
import network  # noqa: E402


class CropBatches(keras.utils.PyDataset):
    """An epoch of the sample plan's crops (the same ones train.py cuts), a batch per index. `pool`
    cuts the next `read_ahead` batches while the GPU trains on this one. callbacks.EpochTracker
    sets the plan's epoch as Keras begins one. (Keras' own worker threads run ahead into the next
    epoch before it begins, and the batch Keras reads before training shifts their order.)"""

    def __init__(self, clips, plan, train_cfg, mirror_frames, pool, read_ahead):
        super().__init__()
        self.clips, self.plan, self.train_cfg, self.pool, self.read_ahead = clips, plan, train_cfg, pool, read_ahead
        self.mirror_frames = mirror_frames
        self.epoch, self.samples, self.batches = None, [], {}

    def __len__(self):
        return self.plan.per_epoch // self.train_cfg["batch_size"]

    def cut(self, samples):
        pairs = [crops.random_crop_pair(self.clips[clip], start, np.random.default_rng(seed), self.train_cfg, self.mirror_frames)
                 for clip, start, seed in samples]
        return np.stack([p for p, _ in pairs]), np.stack([g for _, g in pairs])

    def __getitem__(self, index):
        if self.epoch != self.plan.epoch:
            self.samples, self.epoch, self.batches = list(self.plan()), self.plan.epoch, {}
        size = self.train_cfg["batch_size"]
        for ahead in range(index, min(index + 1 + self.read_ahead, len(self))):
            if ahead not in self.batches:
                self.batches[ahead] = self.pool.submit(self.cut, self.samples[ahead * size:(ahead + 1) * size])
        return self.batches.pop(index).result()


class StopBefore(keras.callbacks.Callback):
    """Ends training after the epoch past which another epoch as long as the last would overrun
    `minutes` of training."""

    def __init__(self, minutes):
        super().__init__()
        self.seconds = 60 * minutes

    def on_train_begin(self, logs=None):
        self.start = self.epoch_start = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        now = time.monotonic()
        if now + (now - self.epoch_start) - self.start > self.seconds:
            print(f"\nstopping after epoch {epoch + 1}: another would pass --minutes {self.seconds / 60:g}")
            self.model.stop_training = True


def check_supported(cfg):
    if cfg["gan"]["enabled"]:
        raise ValueError("gan.enabled: lab/train_jax.py trains the plain generator; train the GAN variant with train.py")
    if cfg["loss"]["ms_ssim"]:
        raise ValueError("loss.ms_ssim: MS-SSIM is TensorFlow's; train with it through train.py")
    if cfg["train"]["strategy"] != "default":
        raise ValueError(f"train.strategy {cfg['train']['strategy']}: lab/train_jax.py trains on one device")


def train(cfg, minutes=None, workers=8, extra_callbacks=(), verbose="auto"):
    """Run the configured training; returns the Keras History."""
    check_supported(cfg)
    train_cfg = cfg["train"]
    folder = Path(train_cfg["checkpoint_root"]) / cfg["experiment"]
    if (folder / "best.json").exists():
        raise FileExistsError(f"{folder} holds a finished run: set another experiment")
    train_clips, valid_clips = crops.training_clips(cfg)
    loss_fn = losses.make_loss(cfg["loss"])

    keras.utils.set_random_seed(cfg["seed"])
    plan = crops.SamplePlan(train_clips, train_cfg, cfg["seed"])
    steps_per_epoch = plan.per_epoch // train_cfg["batch_size"]
    generator = network.build_unet(cfg["model"])
    if train_cfg["init_weights"]:
        network.load_initial_weights(generator, cfg["model"], train_cfg["init_weights"])
    # Keras saves a compiled model's optimizer state with its weights: the generator stays
    # uncompiled, and a model of the same layers (the same variables) trains.
    trainer = keras.Model(generator.input, generator.output, name=f"{generator.name}_trainer")
    ema = train_cfg["ema_momentum"]
    trainer.compile(keras.optimizers.Adam(callbacks.learning_rate(train_cfg, steps_per_epoch),
                                          clipnorm=train_cfg["clip_norm"], use_ema=ema is not None,
                                          ema_momentum=ema or 0.99),
                    loss=lambda gt_rgb, rgb: loss_fn(gt_rgb, rgb)[0],
                    metrics=[keras.metrics.MeanMetricWrapper(metrics.video_psnr, name="psnr"),
                             keras.metrics.MeanMetricWrapper(metrics.video_ssim, name="ssim")])

    folder.mkdir(parents=True, exist_ok=True)
    policy, why = network.resolve_precision(cfg["model"])
    print(f"starting {cfg['experiment']} ({folder}) on Keras {keras.backend.backend()}; precision: {policy} ({why})")
    valid_packed, valid_gt = crops.validation_arrays(valid_clips, train_cfg)
    run_callbacks = [
        callbacks.SaveConfig(folder / "config.yaml", cfg,
                             f"precision: {policy} ({why}); trained by lab/train_jax.py\nmachine: {network.machine()}"),
        *callbacks.run_guards(plan, folder, generator, ema),
        keras.callbacks.CSVLogger(folder / "log.csv"),
        *([StopBefore(minutes)] if minutes else []),
        *extra_callbacks,
    ]
    with ThreadPoolExecutor(workers) as pool:
        return trainer.fit(CropBatches(train_clips, plan, train_cfg, cfg["test"]["mirror_frames"], pool, read_ahead=workers), epochs=train_cfg["epochs"],
                           validation_data=(valid_packed, valid_gt), validation_batch_size=train_cfg["batch_size"],
                           callbacks=run_callbacks, verbose=verbose, shuffle=False)  # the plan shuffles


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, help="end at the last epoch that fits in this many minutes")
    parser.add_argument("--workers", type=int, default=8, help="threads that cut batches ahead of training (default 8)")
    cli.add_arguments(parser)
    args = parser.parse_args(argv)
    cfg = cli.from_args(args)
    history = train(cfg, args.minutes, args.workers)
    print(f"best validation PSNR {max(history.history['val_psnr']):.2f} dB; weights and log: "
          f"{Path(cfg['train']['checkpoint_root']) / cfg['experiment']}")


if __name__ == "__main__":
    cli.run_script(main)
