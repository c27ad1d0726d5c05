"""Regenerate the original's tables: train every row on the same budget, evaluate it on the test
list with test.py (the budget's list for every row), and write the table and its curves.

    python -m lab.run_experiments TABLE [TABLE ...] [--budget cpu|smoid] [--set section.key=value ...]
    python -m lab.run_experiments --list

A row is a YAML file of lab/experiments/ applied on top of the budget. Rows with more than the budget's
batch size get its learning rate times sqrt(batch / budget batch). Each row trains as experiment
BUDGET_ROW (in train.checkpoint_root; an interrupted table resumes, and a finished row is not
trained again; rows whose settings are the same under a budget share one run), then `test.py 2`
measures it. The wall time is the sum of the log's epoch times (training and validation). The
table goes to figure/BUDGET_TABLE.md, the curves to figure/BUDGET_TABLE_curves.png, and between
<!-- table:BUDGET_TABLE --> markers wherever README.md or docs/*.md have them.

The `breadth` table trains on the default set alone (its lists in 0_data/default_set, made by
`generate_file_list.py --sources default --set data.lists_dir=0_data/default_set`) and on all the
clips (default + broad); `lab/generalisation.py --compare` then measures them on held-out footage.
"""
import argparse
import math
from pathlib import Path

import callbacks
import cli
import config
import data
import enhance
from lab import figures
import losses
import train
from atomic import atomic_output

EXPERIMENTS = Path(__file__).resolve().parent / "experiments"
TABLES = {
    "batch": ["batch_1", "batch_4", "batch_10"],
    "loss": ["baseline", "structure", "region", "vgg", "multi_loss_1", "multi_loss_2"],
    "resnet": ["baseline", "resnet"],
    "gan": ["baseline", "gan", "gan_light"],
    "depth": ["depth_2", "baseline", "depth_4"],
    "channels": ["channels_16", "channels_32"],
    "temporal": ["baseline", "unet_2d"],
    "input": ["baseline", "clip_negative", "time_padding_zeros"],
    "breadth": ["default_set", "baseline", "unet_2d"],
    "precision": ["bf16", "float32"],
}
BUDGETS = {  # applied before a row's file, which may change them; command-line values come last
    # 20 epochs x 40 steps of batch 4, 8x64x64 packed crops, 16 channels: ~7 minutes a row on 2 cores.
    "cpu": {"preset": "demo", "train": {"epochs": 20, "lr_drop_epoch": 16, "steps_per_epoch": 40}},
    # The original's protocol (16x128x128 crops, batch 1, 60 epochs): a GPU job.
    "smoid": {"preset": "smoid"},
}
NEEDS_WEIGHTS = "needs weights (see README)"


def row_config(row, budget_name, overrides):
    """A row's configuration: the budget, the row's file, the command line's values, and the
    row's learning rate if its batch differs from the budget's."""
    budget = BUDGETS[budget_name]
    budget_train = config.load_config(overrides=overrides, base=budget)["train"]
    cfg = config.load_config(EXPERIMENTS / f"{row}.yaml", overrides, base=budget)
    if cfg["train"]["batch_size"] == budget_train["batch_size"]:
        return cfg
    lr = budget_train["learning_rate"] * math.sqrt(cfg["train"]["batch_size"] / budget_train["batch_size"])
    return config.load_config(EXPERIMENTS / f"{row}.yaml", [*overrides, f"train.learning_rate={lr:.6g}"], base=budget)


def trained_as(row, budget_name, overrides):
    """The first row (baseline, then by name) with exactly this row's settings, whose run this row
    shares: e.g. batch_4 is the cpu budget's baseline, and channels_32 the smoid budget's."""
    settings = row_config(row, budget_name, overrides)
    candidates = ["baseline", *sorted(path.stem for path in EXPERIMENTS.glob("*.yaml"))]  # the row is among them
    return next(other for other in candidates if row_config(other, budget_name, overrides) == settings)


def finished(cfg):
    """True when this experiment already trained to the end with exactly this configuration, its
    test settings aside (they change how it is measured, not how it was trained), and from the same
    starting weights: a train.init_weights file written after the run began (a newly shipped
    model, say) has the same path but other weights."""
    folder = train.experiment_folder(cfg)
    if not (folder / "best.weights.h5").is_file() or (folder / "backup").exists():
        return False
    init = cfg["train"]["init_weights"]
    if init and Path(init).stat().st_mtime > (folder / "config.yaml").stat().st_mtime:
        return False
    return {**config.load_config(folder / "config.yaml"), "test": None} == {**cfg, "test": None}


def test_list(budget_name, overrides):
    """The list every row of a table is measured on: the budget's, also for a row that trains on
    lists of its own (default_set), so that the rows compare on the same clips."""
    return Path(config.load_config(overrides=overrides, base=BUDGETS[budget_name])["data"]["lists_dir"]) / "test_list"


def run_row(row, budget_name, overrides):
    """Train (unless already done) and evaluate one row; returns its line of the table."""
    run = trained_as(row, budget_name, overrides)
    name = f"{budget_name}_{run}"
    cfg = row_config(run, budget_name, [*overrides, f"experiment={name}"])
    if "vgg" in cfg["loss"]["terms"]:
        try:
            losses.vgg_weights_path(cfg["loss"])
        except FileNotFoundError:
            return {"row": row, "status": NEEDS_WEIGHTS}
    if not finished(cfg):
        train.train(cfg, verbose=2, restart=True)  # a row whose settings changed trains again
    folder = Path(cfg["test"]["result_root"]) / name / "test"  # with the row's whole configuration, budget included
    overall = enhance.evaluate(data.open_list(test_list(budget_name, overrides), cfg["data"]), cfg,
                                   train.experiment_folder(cfg) / "best.weights.h5", folder, save_npy=True)
    log = figures.read_log(train.experiment_folder(cfg) / "log.csv")
    label = row if run == row else f"{row} (= {run})"
    collapse = callbacks.first_collapse(log["val_psnr"])
    if collapse:  # scores of a run that broke (callbacks.StopOnCollapse): say so beside them
        label += f" (collapsed at epoch {collapse})"
    return {"row": label, "experiment": name, **{k: overall["network"][k] for k in enhance.SCORES},
            "train_loss": log["loss"][-1], "val_loss": log["val_loss"][-1], "val_psnr": max(log["val_psnr"]),
            "minutes": sum(log["epoch_seconds"]) / 60}


def markdown(rows):
    lines = ["| row | PSNR | SSIM | MSE(MABD) 1e-3 | motion | cast R, G, B | chroma err | train loss | val loss | best val PSNR | wall (min) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "status" in r:
            lines.append(f"| {r['row']} | {r['status']} | | | | | | | | | |")
        else:
            lines.append(f"| {r['row']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['mse_mabd']:.3f} | {r['motion']:.2f} | "
                         f"{r['cast_r']:+.1f}, {r['cast_g']:+.1f}, {r['cast_b']:+.1f} | {r['chroma_error']:.3f} | "
                         f"{r['train_loss']:.4f} | {r['val_loss']:.4f} | {r['val_psnr']:.2f} | {r['minutes']:.1f} |")
    return "\n".join(lines) + "\n"


def run_table(table, budget_name, overrides, figure_dir="figure", documents=None):
    rows = [run_row(row, budget_name, overrides) for row in TABLES[table]]
    key = f"{budget_name}_{table}"
    text = markdown(rows)
    Path(figure_dir).mkdir(parents=True, exist_ok=True)
    with atomic_output(Path(figure_dir) / f"{key}.md") as tmp:
        tmp.write_text(text)
    trained = [r for r in rows if "experiment" in r]
    if trained:
        root = Path(config.load_config(overrides=overrides, base=BUDGETS[budget_name])["train"]["checkpoint_root"])
        figures.plot_curves({r["row"]: figures.read_log(root / r["experiment"] / "log.csv") for r in trained},
                            Path(figure_dir) / f"{key}_curves.png")
    figures.update_documents(key, text, documents)
    print(f"\n{key}\n{text}")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tables", nargs="*", help=f"any of: {', '.join(TABLES)}")
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="cpu")
    parser.add_argument("--list", action="store_true", help="list the tables and their rows")
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="SECTION.KEY=VALUE",
                        help="overrides for every row, after the budget and the row's file")
    args = parser.parse_args(argv)
    if args.list or not args.tables:
        for table, rows in TABLES.items():
            print(f"{table}: {', '.join(rows)}")
        return
    unknown = [t for t in args.tables if t not in TABLES]
    if unknown:
        parser.error(f"unknown table {unknown[0]!r}; tables: {', '.join(TABLES)}")
    for table in args.tables:
        run_table(table, args.budget, args.set)


if __name__ == "__main__":
    cli.run_script(main)
