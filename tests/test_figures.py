"""lab/figures.py: curves from CSV logs, run summaries."""
import cv2
import pytest
import yaml

import config
from lab import figures

LOG = "epoch,l1,loss,val_l1,val_loss,val_psnr,val_ssim\n0,0.3,0.3,0.25,0.25,14.0,0.3\n1,0.2,0.2,0.2,0.2,16.5,0.4\n"


def test_curves_are_drawn_from_csv_logs(tmp_path):
    for name in ("base", "resnet"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "log.csv").write_text(LOG)
    assert figures.read_log(tmp_path / "base" / "log.csv")["val_psnr"] == [14.0, 16.5]
    output = tmp_path / "figure" / "curves.png"
    figures.main(["base", "resnet", "--output", str(output), "--set", f"train.checkpoint_root={tmp_path}"])
    image = cv2.imread(str(output))
    assert image is not None and image.shape == (480, 1320, 3)


def test_missing_or_empty_log_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing/log.csv: no training log"):
        figures.read_log(tmp_path / "nothing" / "log.csv")
    (tmp_path / "log.csv").write_text("epoch,loss\n")
    with pytest.raises(ValueError, match="no epochs yet"):
        figures.read_log(tmp_path / "log.csv")


@pytest.mark.parametrize("header, machine", [
    ("# precision: float32 (model.precision in the configuration)\n# machine: Some CPU, CPU flags: no bf16\n",
     "Some CPU, CPU flags: no bf16"),
    ("# precision: mixed_bfloat16 (auto: GPU NVIDIA H100 80GB HBM3 runs bf16 natively); trained by lab/train_jax.py\n",
     "NVIDIA H100 80GB HBM3"),  # a run from before the machine line: the GPU its precision line names
])
def test_a_run_summary_names_the_machine_the_run_recorded(tmp_path, header, machine):
    cfg = config.load_config(overrides=["train.steps_per_epoch=10", "train.epochs=2", "train.batch_size=3"])
    (tmp_path / "config.yaml").write_text(header + yaml.safe_dump(cfg))
    (tmp_path / "log.csv").write_text("epoch,epoch_seconds,loss,val_psnr\n0,30,0.3,14.0\n1,30,0.2,16.5\n")
    (tmp_path / "best.json").write_text('{"epoch": 2, "val_psnr": 16.5}')
    summary = figures.run_summary(tmp_path)
    assert f"| machine | {machine} |" in summary
    assert "| steps x batch | 20 x 3 |" in summary and "| wall time (training and validation) | 0.02 h, 3.00 s a step |" in summary
    assert "| best epoch (validation PSNR) | 2: 16.50 dB |" in summary  # no SSIM column in this log: none shown
