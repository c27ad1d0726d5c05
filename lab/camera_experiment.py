"""Fine-tuning for your own camera, measured: the recipe of docs/data.md ("Your own camera") run on a
simulated camera whose noise lies outside the generic synthesis ranges.

    python -m lab.camera_experiment [--steps 400] [--set section.key=value ...]

1. The camera (SENSOR, two ISO settings) films bias frames and flats at four brightness levels,
   stored as packed npy in data.lists_dir/simulated_camera/frames/.
2. calibrate.py makes its profile, simulated_camera/simulated_camera.yaml (and
   figure/simulated_camera_photon_transfer.png).
3. generate_file_list.py synthesises the default and broad footage with that profile into
   data.lists_dir/simulated_camera/.
4. train.py fine-tunes the shipped model on it: lab/experiments/shipped.yaml's settings, a tenth of its
   learning rate, warmed up over the first quarter of --steps steps.
5. test.py's evaluation scores the shipped and the fine-tuned model on the camera's test clips.

The table goes to figure/camera_finetune.md and between its markers in README.md and docs/.
"""
import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

import calibrate
import checkpoints
import cli
import config
import data
import enhance
from lab import run_experiments
import generate_file_list
import synthesis
import train
from atomic import atomic_output
from lab.generalisation import COLOUR_COLUMNS, colour_cells, publish

# Gain (DN per electron), read and row noise (DN) at two ISO settings: noisier than every generic
# draw (gain 0.25-1.5, read 0.5-2, row 0-0.5), so the shipped model has never seen such noise.
SENSOR = {3200: (3.0, 4.0, 1.0), 6400: (6.0, 7.0, 2.0)}
FLAT_LEVELS = (0.01, 0.05, 0.2, 0.6)  # of the range between black and white
EXPERIMENT = "simulated_camera"
SHIPPED_RECIPE = Path(__file__).resolve().parent / "experiments" / "shipped.yaml"


def film(params, level, frames, rng, size=(128, 192)):
    """Packed frames of an evenly lit sensor; level 0 is the lens cap on (bias frames)."""
    return data.packed_from_mosaic(synthesis.expose(np.full((frames, *size), level, np.float32), params, rng))


def write_calibration_frames(folder, cfg):
    """Bias and flat frames per ISO as packed npy; returns calibrate.py's --bias and --flats."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(cfg["seed"])
    generic = synthesis.draw_camera_params(rng, cfg["synthesis"])
    bias, flats = [], []
    for iso, (gain, read, row) in SENSOR.items():
        camera = dataclasses.replace(generic, ratio=1.0, shot_gain=gain, read_noise=read, row_noise=row)
        for level in (0.0, *FLAT_LEVELS):
            path = folder / (f"bias_{iso}.npy" if level == 0 else f"flat_{iso}_{level}.npy")
            with atomic_output(path) as tmp:
                np.save(tmp, film(camera, level, 16 if level == 0 else 4, rng))
            with atomic_output(data.sidecar_path(path)) as tmp:  # the levels a camera's raw files record
                tmp.write_text(json.dumps({"black_level": camera.black_level, "white_level": camera.white_level}))
            (bias if level == 0 else flats).append(f"{iso}={path}")
    return bias, flats


def data_overrides(root):
    return [f"data.lists_dir={root}", f"data.input_dir={root / 'train_he'}", f"data.gt_dir={root / 'gt_he'}"]


def fine_tune_config(root, steps, overrides, epochs=4):
    """The shipped model's recipe on the camera's data, from the shipped weights, a tenth of the
    recipe's learning rate, warmed up over the first quarter of `steps` steps in all."""
    recipe = config.load_config(SHIPPED_RECIPE)
    return config.load_config(SHIPPED_RECIPE, [
        *data_overrides(root), f"experiment={EXPERIMENT}", f"train.init_weights={checkpoints.SHIPPED}",
        f"train.learning_rate={recipe['train']['learning_rate'] / 10:g}", f"train.epochs={epochs}",
        f"train.lr_drop_epoch={epochs}", f"train.steps_per_epoch={max(1, steps // epochs)}",
        f"train.warmup_steps={steps // 4}", *overrides])


def scores(weights, root, overrides):
    """test.py 2 on the camera's test list with these weights: the network's overall scores."""
    cfg, weights = checkpoints.configure([*data_overrides(root), *overrides], explicit_weights=str(weights))
    folder = Path(cfg["test"]["result_root"]) / EXPERIMENT / Path(weights).parent.name
    return enhance.evaluate(enhance.open_case(2, cfg), cfg, weights, folder)["network"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=400, help="fine-tuning steps (batch 8)")
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="SECTION.KEY=VALUE")
    args = parser.parse_args(argv)
    cfg = config.load_config(overrides=args.set)
    root = Path(cfg["data"]["lists_dir"]) / EXPERIMENT
    profile = root / f"{EXPERIMENT}.yaml"
    bias, flats = write_calibration_frames(root / "frames", cfg)
    calibrate.main(["--bias", *bias, "--flats", *flats, "--output", str(profile)])
    generate_file_list.main(["--synthesize", "--sources", "default", "broad",
                             "--set", f"synthesis.camera={profile}", *data_overrides(root), *args.set])
    tuned = fine_tune_config(root, args.steps, args.set)
    if not run_experiments.finished(tuned):
        train.train(tuned, verbose=2, restart=True)
    rows = {"shipped model": checkpoints.SHIPPED,
            f"fine-tuned for the camera ({args.steps} steps)": train.experiment_folder(tuned) / "best.weights.h5"}
    lines = [f"| model | PSNR | SSIM | {COLOUR_COLUMNS} |", "| --- | --- | --- | --- | --- |"]
    for label, weights in rows.items():
        net = scores(weights, root, args.set)
        lines.append(f"| {label} | {net['psnr']:.2f} | {net['ssim']:.3f} | {colour_cells(net)} |")
    publish("camera_finetune", "\n".join(lines) + "\n")


if __name__ == "__main__":
    cli.run_script(main)
