"""figures.py: curves from CSV logs."""
import cv2
import pytest

import figures

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
