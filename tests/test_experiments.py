"""lab/run_experiments.py: a toy table runs end to end and writes a well-formed table (no quality asserted)."""
import os

import numpy as np
import pytest
import yaml

import config
from lab import run_experiments as experiments
import generate_file_list
import synthesis


def test_toy_table_end_to_end(tmp_path, monkeypatch):
    folders = [f"data.input_dir={tmp_path / 'in'}", f"data.gt_dir={tmp_path / 'gt'}", f"data.lists_dir={tmp_path}",
               f"train.checkpoint_root={tmp_path / 'ckpt'}", f"test.result_root={tmp_path / 'results'}"]
    cfg = config.load_config(overrides=folders + ["synthesis.frames=6", "synthesis.height=24", "synthesis.width=32"])
    rng = np.random.default_rng(0)
    images = [(np.kron(rng.random((6, 8, 3)), np.ones((10, 10, 1))) * 255).astype(np.uint8) for _ in range(3)]
    synthesis.synthesize_sources([(f"s{i}", "test", lambda s, im=im, i=i: synthesis.still_clip(im, f"s{i}", s))
                                  for i, im in enumerate(images)], cfg)
    generate_file_list.main(["--set", *folders])
    toy_budget = {"preset": "demo", "model": {"depth": 2, "base_channels": 4},  # depth_2 is this baseline
                  "train": {"crop_frames": 4, "crop_size": 8, "batch_size": 2, "epochs": 2, "steps_per_epoch": 2,
                            "preview_every": 0},
                  "test": {"tile_frames": 4, "overlap_frames": 1, "tile_size": 8, "overlap_size": 2},
                  "loss": {"vgg_weights": str(tmp_path / "no_vgg.h5")}}
    monkeypatch.setitem(experiments.BUDGETS, "toy", toy_budget)
    monkeypatch.setitem(experiments.TABLES, "toy", ["baseline", "depth_2", "batch_4", "vgg"])
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- table:toy_toy -->\nold\n<!-- /table:toy_toy -->\nend\n")
    rows = experiments.run_table("toy", "toy", folders, figure_dir=tmp_path / "figure", documents=[readme])

    assert [r["row"] for r in rows] == ["baseline", "depth_2 (= baseline)", "batch_4", "vgg"]
    assert rows[3]["status"] == experiments.NEEDS_WEIGHTS
    # A row with the baseline's settings shares its run instead of training again.
    assert rows[1]["experiment"] == "toy_baseline" and not (tmp_path / "ckpt" / "toy_depth_2").exists()
    assert rows[1]["psnr"] == rows[0]["psnr"]
    for row in (rows[0], rows[2]):
        scores = ("psnr", "ssim", "mse_mabd", "motion", "train_loss", "val_loss", "val_psnr")
        assert np.isfinite([row[key] for key in scores]).all()
        assert 0 < row["minutes"] < 10
    batch_4 = config.load_config(tmp_path / "ckpt" / "toy_batch_4" / "config.yaml")["train"]
    assert batch_4["batch_size"] == 4 and batch_4["learning_rate"] == pytest.approx(5e-4 * (4 / 2) ** 0.5, rel=1e-5)
    table = (tmp_path / "figure" / "toy_toy.md").read_text().splitlines()
    assert table[0].startswith("| row | PSNR | SSIM | MSE(MABD) 1e-3 |") and len(table) == 6
    assert all(line.count("|") == 12 for line in table)
    assert (tmp_path / "figure" / "toy_toy_curves.png").is_file()
    assert readme.read_text() == "intro\n<!-- table:toy_toy -->\n" + "\n".join(table) + "\n<!-- /table:toy_toy -->\nend\n"
    # A finished row is not trained again.
    assert experiments.finished(config.load_config(experiments.EXPERIMENTS / "baseline.yaml",
                                                   folders + ["experiment=toy_baseline"], base=toy_budget))
    # Nor when only how it is measured changes; a training setting trains it again.
    for change, done in (("test.anchor_colour=false", True), ("train.learning_rate=0.1", False)):
        assert experiments.finished(config.load_config(experiments.EXPERIMENTS / "baseline.yaml",
                                                       folders + ["experiment=toy_baseline", change], base=toy_budget)) is done


def test_a_run_from_weights_changed_since_is_not_finished(tmp_path):
    """camera_experiment fine-tunes models/shipped/: after a new model is shipped at the same path,
    its fine-tuned run must train again, though its configuration reads the same."""
    init = tmp_path / "shipped.weights.h5"
    init.write_bytes(b"old weights")
    cfg = config.load_config(overrides=[f"train.checkpoint_root={tmp_path}", "experiment=tuned",
                                        f"train.init_weights={init}"])
    folder = tmp_path / "tuned"
    folder.mkdir()
    (folder / "best.weights.h5").write_bytes(b"")
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    os.utime(init, (1, 1))  # written long before the run
    assert experiments.finished(cfg)
    init.write_bytes(b"new weights")  # shipped after the run
    assert not experiments.finished(cfg)


def test_every_row_is_measured_on_the_budgets_test_list():
    """default_set trains on lists of its own; its row must still be scored on the others' test list."""
    assert config.load_config(experiments.EXPERIMENTS / "default_set.yaml")["data"]["lists_dir"] != "0_data"
    assert str(experiments.test_list("cpu", [])) == "0_data/test_list"
    assert str(experiments.test_list("cpu", ["data.lists_dir=elsewhere"])) == "elsewhere/test_list"
