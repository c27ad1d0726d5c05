"""Training and validation curves (loss, PSNR) from the CSV logs of one or more experiments.

    python figures.py EXPERIMENT [EXPERIMENT ...] [--output figure/curves.png]

reads train.checkpoint_root/EXPERIMENT/log.csv and draws, per epoch, the training and validation
loss beside the validation PSNR, one colour per experiment (like the original's resnet_result.png).
"""
import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

import config  # noqa: E402
from atomic import atomic_output  # noqa: E402


def read_log(path):
    """log.csv -> {column: [float per epoch]}."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no training log (has this experiment been trained?)")
    with path.open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path}: the log has no epochs yet")
    return {key: [float(row[key]) for row in rows] for key in rows[0]}


def plot_curves(logs, output):
    """logs: {experiment name: read_log(...)}; writes one PNG with a loss and a PSNR panel."""
    figure, (loss_axis, psnr_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for (name, log), colour in zip(logs.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"] * 10):
        epochs = [e + 1 for e in log["epoch"]]
        loss_axis.plot(epochs, log["loss"], color=colour, label=f"{name} train")
        if "val_loss" in log:
            loss_axis.plot(epochs, log["val_loss"], color=colour, linestyle="--", label=f"{name} validation")
        if "val_psnr" in log:
            psnr_axis.plot(epochs, log["val_psnr"], color=colour, label=name)
    loss_axis.set(xlabel="epoch", ylabel="loss", title="loss", yscale="log")
    psnr_axis.set(xlabel="epoch", ylabel="PSNR (dB)", title="validation PSNR")
    for axis in (loss_axis, psnr_axis):
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    figure.tight_layout()
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(output) as tmp:
        figure.savefig(tmp, dpi=120)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiments", nargs="+")
    parser.add_argument("--output", help="PNG path (default figure/EXPERIMENT_curves.png)")
    config.add_arguments(parser)
    args = parser.parse_args(argv)
    root = Path(config.from_args(args)["train"]["checkpoint_root"])
    logs = {name: read_log(root / name / "log.csv") for name in args.experiments}
    output = args.output or f"figure/{'_'.join(args.experiments)}_curves.png"
    plot_curves(logs, output)
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
