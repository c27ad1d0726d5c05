"""Training and validation curves (loss, PSNR) from the CSV logs of one or more experiments, a
summary of one run, and the generated tables of README.md and docs/.

    python -m lab.figures EXPERIMENT [EXPERIMENT ...] [--output figure/curves.png]
    python -m lab.figures EXPERIMENT --summary      also figure/EXPERIMENT_run.md (steps, time, best epoch, machine)

reads train.checkpoint_root/EXPERIMENT/log.csv and draws, per epoch, the training and validation
loss beside the validation PSNR, one colour per experiment (like the original's resnet_result.png).
"""
import argparse
import csv
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

import cli
import config  # noqa: E402
import network  # noqa: E402
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


def project_documents():
    """The documents whose tables commands write: README.md and docs/*.md."""
    root = Path(__file__).resolve().parents[1]
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def update_documents(key, table, documents=None):
    """Replace the table between <!-- table:KEY --> and <!-- /table:KEY --> markers wherever they
    stand: project_documents() unless `documents` are named."""
    for document in documents or project_documents():
        text = Path(document).read_text()
        pattern = re.compile(rf"(<!-- table:{re.escape(key)} -->\n).*?(<!-- /table:{re.escape(key)} -->)", re.S)
        if pattern.search(text):
            with atomic_output(document) as tmp:
                tmp.write_text(pattern.sub(lambda m: m.group(1) + table + m.group(2), text))


def older_runs_machine(precision):
    """Runs before config.yaml named the machine: the GPU their precision line names, else this
    machine, where they ran."""
    gpu = re.search(r"GPU (.+?) runs bf16", precision)
    return gpu.group(1) if gpu else network.machine()


def run_summary(folder):
    """A markdown table of one training run: budget, wall time, best epoch, machine and precision,
    from its log, best.json and config.yaml (whose first lines name the precision and machine)."""
    folder = Path(folder)
    log, best = read_log(folder / "log.csv"), json.loads((folder / "best.json").read_text())
    cfg = config.load_config(folder / "config.yaml")
    header = dict(line.lstrip("# ").split(": ", 1) for line in (folder / "config.yaml").read_text().splitlines()
                  if line.startswith("# ") and ": " in line)
    steps = len(log["epoch"]) * cfg["train"]["steps_per_epoch"] if cfg["train"]["steps_per_epoch"] else None
    seconds = sum(log["epoch_seconds"])
    ssim = lambda value: f", SSIM {value:.3f}" if value is not None else ""  # noqa: E731 (older JAX logs lack it)
    rows = [("epochs", f"{len(log['epoch'])} of {cfg['train']['epochs']}"),
            ("steps x batch", f"{steps} x {cfg['train']['batch_size']}" if steps else "one pass of the plan per epoch"),
            ("wall time (training and validation)", f"{seconds / 3600:.2f} h, {seconds / (steps or 1):.2f} s a step"),
            ("best epoch (validation PSNR)", f"{best['epoch']}: {best['val_psnr']:.2f} dB{ssim(best.get('val_ssim'))}"),
            ("last epoch", f"{log['val_psnr'][-1]:.2f} dB{ssim((log.get('val_ssim') or [None])[-1])}; "
                           f"training loss {log['loss'][-1]:.4f}"),
            ("machine", header.get("machine") or older_runs_machine(header["precision"])),
            ("precision", f"precision: {header['precision']}")]
    return "| | |\n| --- | --- |\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiments", nargs="+")
    parser.add_argument("--output", help="PNG path (default figure/EXPERIMENT_curves.png)")
    parser.add_argument("--summary", action="store_true", help="also write figure/EXPERIMENT_run.md for each")
    cli.add_arguments(parser)
    args = parser.parse_args(argv)
    root = Path(cli.from_args(args)["train"]["checkpoint_root"])
    logs = {name: read_log(root / name / "log.csv") for name in args.experiments}
    output = args.output or f"figure/{'_'.join(args.experiments)}_curves.png"
    plot_curves(logs, output)
    print(f"wrote {output}")
    for name in args.experiments if args.summary else ():
        table = run_summary(root / name)
        with atomic_output(Path("figure") / f"{name}_run.md") as tmp:
            tmp.write_text(table)
        update_documents(f"{name}_run", table)
        print(table)


if __name__ == "__main__":
    cli.run_script(main)
