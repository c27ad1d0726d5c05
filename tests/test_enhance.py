"""test.py as a user runs it: cases, --input (npy, camera raw folders), outputs, metrics, errors."""
import dataclasses
import datetime
import json
import os
import shutil
import types
from pathlib import Path

import keras
import numpy as np
import pytest
import rawpy
import yaml

import camera_raw
import config
import data
import generate_file_list
import metrics
import network
import synthesis
import checkpoints
import enhance
import test as test_script  # the project's test.py
from inference import TiledEnhancer
from video_io import read_video



@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """Four synthetic clips with lists, and a tiny 'trained' model saved as train.py saves one."""
    root = tmp_path_factory.mktemp("experiment")
    folders = [f"data.input_dir={root / 'train_he'}", f"data.gt_dir={root / 'gt_he'}", f"data.lists_dir={root}",
               f"data.customized_dir={root / 'customized'}", f"train.checkpoint_root={root / 'ckpt'}",
               f"test.result_root={root / 'results'}", "experiment=tiny"]
    cfg = config.load_config(overrides=folders + ["synthesis.frames=6", "synthesis.height=24", "synthesis.width=32",
                                                  "model.depth=2", "model.base_channels=4"])
    rng = np.random.default_rng(0)
    sources = []
    for i in range(4):
        image = (np.kron(rng.random((6, 8, 3)), np.ones((10, 10, 1))) * 255).astype(np.uint8)
        sources.append((f"scene{i}", "test", lambda s, image=image, i=i: synthesis.still_clip(image, f"scene{i}", s)))
    synthesis.synthesize_sources(sources, cfg)
    (root / "customized").mkdir()
    np.save(root / "customized" / "own.npy", np.load(root / "train_he" / "scene0.npy"))
    (root / "customized" / "own.json").write_text((root / "train_he" / "scene0.json").read_text())
    generate_file_list.main(["--set", *folders])
    keras.utils.set_random_seed(0)
    folder = root / "ckpt" / "tiny"
    folder.mkdir(parents=True)
    network.build_unet(cfg["model"]).save_weights(folder / "best.weights.h5")
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    return root, folders


SMALL_TILES = ["test.tile_frames=4", "test.overlap_frames=2", "test.tile_size=8", "test.overlap_size=2"]  # fit the tiny clips


def run(folders, *args):
    test_script.main([*args, "--set", *folders, *SMALL_TILES])


def test_case_2_writes_videos_npy_and_metrics(experiment, capsys, monkeypatch):
    root, folders = experiment
    monkeypatch.delattr(os, "posix_fallocate", raising=False)  # as on macOS, which has none
    # model.depth 2 / 4 channels come from the checkpoint's config. The anchor would lift the
    # untrained model's dark noise to the input's brightness, which H.264 cannot keep at 24x32.
    run(folders, "2", "--compare", "--sheet", "--set", "test.anchor_colour=false")
    folder = root / "results" / "tiny" / "test"
    name = data.read_file_list(root / "test_list")[0][0]
    frames, fps = read_video(folder / f"{name}.mp4")
    assert frames.shape == (6, 24, 32, 3) and fps == synthesis.STILL_FPS
    assert read_video(folder / f"{name}_compare.mp4")[0].shape == (6, 24, 96, 3)
    assert (folder / f"{name}_sheet.png").is_file()
    results = np.load(folder / f"{name}.npy")
    assert results.dtype == np.uint8 and results.shape == (6, 24, 32, 3)
    assert np.abs(results.astype(int) - frames).mean() < 8  # the mp4 is the same video, lossy
    report = json.loads((folder / "metrics.json").read_text())
    assert set(report["overall"]) == {"network", "linear", "he"}
    assert report["videos"][name]["network"]["frames"] == 6
    made_with = report["made_with"]  # what a table of these scores must say about them
    assert made_with["weights"] == str(root / "ckpt" / "tiny" / "best.weights.h5")
    assert made_with["photo_weights"] is None  # a trained experiment's model enhances its photos too
    assert made_with["test"]["anchor_colour"] is False and made_with["test"]["self_ensemble"] == 1
    assert "MSE(MABD)" in capsys.readouterr().out
    gt_rgb = np.load(root / "gt_he" / f"{name}.npy")
    assert report["videos"][name]["network"]["psnr"] == pytest.approx(metrics.psnr(gt_rgb, results).mean(), abs=1e-4)
    assert report["videos"][name]["network"]["ssim"] == pytest.approx(metrics.ssim(gt_rgb, results).mean(), abs=1e-5)
    assert (folder / "metrics.csv").read_text().startswith(
        "video,method,psnr,ssim,mse_mabd_1e-3,motion,cast_r,cast_g,cast_b,chroma_error,angle_median_deg,angle_p90_deg,"
        "flicker_levels,warp_error_levels,frames")


def test_case_3_reads_the_customized_list(experiment):
    root, folders = experiment
    assert data.read_file_list(root / "customized_list")[0][1] == data.read_file_list(root / "customized_list")[0][2]
    run(folders, "3")
    assert read_video(root / "results" / "tiny" / "customized" / "own.mp4")[0].shape == (6, 24, 32, 3)
    report = json.loads((root / "results" / "tiny" / "customized" / "metrics.json").read_text())
    assert report["videos"] == {} and report["made_with"]["weights"].endswith("best.weights.h5")  # which model, no scores
    assert not (root / "results" / "tiny" / "customized" / "metrics.csv").exists()  # no ground truth


def test_input_npy_with_output_path(experiment, tmp_path):
    root, folders = experiment
    run(folders, "--input", str(root / "train_he" / "scene1.npy"), "--output", str(tmp_path / "out.mp4"))
    assert read_video(tmp_path / "out.mp4")[0].shape == (6, 24, 32, 3)


@pytest.mark.parametrize("cfa, offset", [("GBRG", (0, 0)), ("RGGB", (1, 0)), ("BGGR", (0, 1)), ("GRBG", (1, 1))])
def test_raw_folder_is_packed_in_gbrg_order(tmp_path, cfa, offset):
    height, width = 32, 48
    colour = np.array([[cfa[0], cfa[1]], [cfa[2], cfa[3]]])[np.arange(height)[:, None] % 2, np.arange(width) % 2]
    levels = {"R": 1000, "G": 2000, "B": 3000}
    for i in range(3):
        mosaic = np.vectorize(levels.get)(colour).astype(np.uint16) + i  # each frame a little brighter
        camera_raw.write_dng(tmp_path / f"frame_{i:03d}.dng", mosaic, cfa)
    frames = camera_raw.RawFolder(tmp_path)
    dy, dx = offset
    assert frames.shape == (3, (height - dy) // 2, (width - dx) // 2, 4)
    packed = frames[0:3]
    assert packed[:, 3, 5].tolist() == [[2000 + i, 3000 + i, 1000 + i, 2000 + i] for i in range(3)]  # G B R G
    assert frames.meta["black_level"] == [64, 64, 64, 64] and frames.meta["white_level"] == 4095
    assert frames.meta["wb_gains"] == pytest.approx([2.0, 1.0, 1.6])
    assert frames[1:2, 2:4].shape == (1, 2, frames.shape[2], 4)


# A camera whose RGB is a known, lopsided mix of linear sRGB (rows sum to 1, not symmetric).
CAMERA_MIX = np.array([[0.7, 0.25, 0.05], [0.1, 0.8, 0.1], [0.02, 0.28, 0.7]])


def test_colour_matrix_from_xyz_inverts_the_camera_mix():
    cam_xyz = CAMERA_MIX @ np.linalg.inv(config.SRGB_TO_XYZ) * 0.8  # any scale: rows are normalised
    np.testing.assert_allclose(camera_raw.ccm_from_xyz(cam_xyz), np.linalg.inv(CAMERA_MIX), atol=1e-9)
    assert not np.allclose(camera_raw.ccm_from_xyz(cam_xyz.T), np.linalg.inv(CAMERA_MIX), atol=1e-2)


def test_colour_matrix_agrees_with_libraw(tmp_path):
    """LibRaw derives a DNG's camera -> sRGB matrix from its ColorMatrix1 itself: ours must agree."""
    cam_xyz = CAMERA_MIX @ np.linalg.inv(config.SRGB_TO_XYZ)
    camera_raw.write_dng(tmp_path / "f.dng", np.full((32, 48), 500, np.uint16), cam_xyz=cam_xyz)
    with rawpy.imread(str(tmp_path / "f.dng")) as raw:
        np.testing.assert_allclose(raw.color_matrix[:, :3], camera_raw.ccm_from_xyz(cam_xyz), atol=2e-3)


def test_zero_color_matrix_falls_back_to_rgb_xyz_matrix(tmp_path):
    """Many cameras' files have an all-zero color_matrix: the metadata must use rgb_xyz_matrix."""
    cam_xyz = CAMERA_MIX @ np.linalg.inv(config.SRGB_TO_XYZ)
    camera_raw.write_dng(tmp_path / "f.dng", np.full((32, 48), 500, np.uint16))
    with rawpy.imread(str(tmp_path / "f.dng")) as raw:
        stand_in = types.SimpleNamespace(**{k: getattr(raw, k) for k in (
            "raw_pattern", "num_colors", "color_desc", "raw_image_visible", "camera_whitebalance",
            "black_level_per_channel", "white_level", "sizes", "other")}, color_matrix=np.zeros((3, 4)),
            rgb_xyz_matrix=np.vstack([cam_xyz, np.zeros((1, 3))]))
        meta = camera_raw.frame_meta(stand_in, tmp_path / "f.dng")
    np.testing.assert_allclose(meta["ccm"], np.linalg.inv(CAMERA_MIX), atol=1e-9)


def test_a_sheet_opencv_failed_to_write_is_an_error_not_an_empty_file(experiment, tmp_path, monkeypatch):
    root, folders = experiment
    monkeypatch.setattr(enhance.cv2, "imwrite", lambda path, image: False)  # its only sign of failure
    with pytest.raises(OSError, match="out_sheet.png: OpenCV could not write it"):
        run(folders, "--input", str(root / "train_he" / "scene1.npy"), "--output", str(tmp_path / "out.mp4"), "--sheet")
    assert not (tmp_path / "out_sheet.png").exists()


def test_raw_folder_through_test_py(experiment, tmp_path):
    root, folders = experiment
    for i in range(4):
        camera_raw.write_dng(tmp_path / f"f{i}.dng", np.random.default_rng(i).integers(64, 400, (32, 48)).astype(np.uint16))
    output = tmp_path / "raw.mp4"
    run(folders, "--input", str(tmp_path), "--output", str(output), "--ratio", "50")
    frames, fps = read_video(output)
    assert frames.shape == (4, 30, 48, 3) and fps == 25.0  # RGGB reads GBRG one row down: a row is cropped


def test_frames_are_turned_as_libraw_renders_the_file(tmp_path):
    """For each of the 8 TIFF orientations, LibRaw's rendering of the file equals its rendering in
    the sensor's orientation (user_flip=0) turned by camera_raw.upright with the file's flip code."""
    rows, cols = np.mgrid[:32, :48]
    mosaic = (rows * 40 + cols * 5 + 200).astype(np.uint16)  # no symmetry: every turn shows
    for orientation in range(1, 9):
        path = tmp_path / f"o{orientation}.dng"
        camera_raw.write_dng(path, mosaic, orientation=orientation)
        renders = []
        for user_flip in (0, None):
            with rawpy.imread(str(path)) as raw:
                flip = camera_raw.frame_meta(raw, path)["flip"]
                renders.append(raw.postprocess(user_flip=user_flip, no_auto_bright=True, gamma=(1, 1), output_bps=16))
        sensor, libraw = renders
        np.testing.assert_array_equal(camera_raw.upright(sensor[None], flip)[0], libraw)


def test_a_raw_folder_filmed_turned_is_written_turned(experiment, tmp_path):
    """The same frames, their files tagged as turned a quarter clockwise (TIFF orientation 6):
    test.py writes a portrait video, the sensor-oriented one turned clockwise."""
    root, folders = experiment
    outputs = {}
    for orientation in (1, 6):
        folder = tmp_path / f"orientation_{orientation}"
        folder.mkdir()
        for i in range(2):
            blocks = np.random.default_rng(i).integers(64, 400, (4, 6))  # large: H.264 keeps them
            camera_raw.write_dng(folder / f"f{i}.dng", np.kron(blocks, np.ones((8, 8))).astype(np.uint16),
                                 orientation=orientation)
        run(folders, "--input", str(folder), "--output", str(tmp_path / f"{orientation}.mp4"), "--ratio", "50")
        outputs[orientation] = read_video(tmp_path / f"{orientation}.mp4")[0].astype(float)
    assert outputs[1].shape == (2, 30, 48, 3) and outputs[6].shape == (2, 48, 30, 3)
    clockwise = np.rot90(outputs[1], -1, axes=(1, 2))
    assert np.abs(outputs[6] - clockwise).mean() < 0.2 * np.abs(outputs[6] - clockwise[:, ::-1, ::-1]).mean()


def test_raw_frames_play_in_the_order_they_were_taken(tmp_path):
    """A camera's counter wraps (IMG_9999, then IMG_0001): where every file records when it was
    taken, frames play in that order, and by name within a second or where a time is missing."""
    taken = {"IMG_9998.dng": 0, "IMG_9999.dng": 0, "IMG_0000.dng": 1, "IMG_0001.dng": 2}
    for level, (name, second) in enumerate(taken.items()):
        camera_raw.write_dng(tmp_path / name, np.full((32, 48), 100 + level, np.uint16),
                             taken=datetime.datetime(2026, 11, 28, 22, 30, second))
    frames = camera_raw.RawFolder(tmp_path)
    assert [p.name for p in frames.paths] == list(taken)
    assert frames[0:4][:, 0, 0, 0].tolist() == [100, 101, 102, 103]
    camera_raw.write_dng(tmp_path / "IMG_0001.dng", np.full((32, 48), 103, np.uint16))  # no time recorded
    assert [p.name for p in camera_raw.RawFolder(tmp_path).paths] == sorted(taken)


def test_raw_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty: no camera raw files"):
        camera_raw.RawFolder(tmp_path / "empty")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    camera_raw.write_dng(mixed / "a.dng", np.full((32, 48), 100, np.uint16))
    camera_raw.write_dng(mixed / "b.dng", np.full((32, 50), 100, np.uint16))
    with pytest.raises(ValueError, match="b.dng: differs from a.dng in packed_shape"):
        camera_raw.RawFolder(mixed)
    camera_raw.write_dng(mixed / "b.dng", np.full((32, 48), 100, np.uint16), black=100)
    with pytest.raises(ValueError, match="b.dng: differs from a.dng in black_level"):
        camera_raw.RawFolder(mixed)
    # The exposure changed mid-burst: brightened by one ratio, the video would flicker.
    camera_raw.write_dng(mixed / "a.dng", np.full((32, 48), 100, np.uint16), shutter_s=1 / 30)
    camera_raw.write_dng(mixed / "b.dng", np.full((32, 48), 100, np.uint16), shutter_s=1 / 60)
    with pytest.raises(ValueError, match=r"b.dng: differs from a.dng in shutter_s; .*\(fixed exposure and white balance\)"):
        camera_raw.RawFolder(mixed)
    camera_raw.write_dng(mixed / "b.dng", np.full((32, 48), 100, np.uint16), shutter_s=1 / 30)
    assert camera_raw.RawFolder(mixed).meta["shutter_s"] == pytest.approx(1 / 30, rel=1e-4)
    (mixed / "b.dng").write_bytes(b"not a raw file")
    with pytest.raises(ValueError, match="b.dng: rawpy cannot read it"):
        camera_raw.RawFolder(mixed)


def test_a_raw_folder_without_a_ratio_gets_one_chosen_from_its_frames(experiment, tmp_path, capsys):
    """Flat frames 36 DN above a black level of 64: the ratio brings them to data.AUTO_TARGET."""
    root, folders = experiment
    for i in range(2):
        camera_raw.write_dng(tmp_path / f"f{i}.dng", np.full((32, 48), 100, np.uint16), neutral=(1, 1, 1))
    run(folders, "--input", str(tmp_path), "--output", str(tmp_path / "x.mp4"))
    chosen = data.AUTO_TARGET / (36 / (4095 - 64))
    assert f"exposure ratio {chosen:.1f}, chosen from its frames" in capsys.readouterr().out
    assert (tmp_path / "x.mp4").is_file()
    dark = tmp_path / "dark"
    dark.mkdir()
    camera_raw.write_dng(dark / "f.dng", np.full((32, 48), 64, np.uint16))
    with pytest.raises(ValueError, match="no light above the black level.*--ratio"):
        run(folders, "--input", str(dark), "--output", str(tmp_path / "y.mp4"))


def test_srgb_video_as_input_says_why(experiment, tmp_path):
    root, folders = experiment
    from video_io import write_video
    write_video(tmp_path / "holiday.mp4", np.zeros((3, 16, 16, 3), np.uint8), 25)
    with pytest.raises(ValueError, match="holiday.mp4 is an ordinary sRGB video.*raw sensor data"):
        run(folders, "--input", str(tmp_path / "holiday.mp4"))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="notes.txt: not a packed .npy clip nor a folder of camera raw frames"):
        run(folders, "--input", str(tmp_path / "notes.txt"))
    np.save(tmp_path / "rgb.npy", np.zeros((3, 16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="rgb.npy: packed Bayer input must be uint16"):
        run(folders, "--input", str(tmp_path / "rgb.npy"))


def test_missing_and_incompatible_checkpoints(experiment, tmp_path, monkeypatch):
    root, folders = experiment
    monkeypatch.setattr(checkpoints, "SHIPPED", tmp_path / "no_shipped_model.weights.h5")
    with pytest.raises(FileNotFoundError, match="no trained weights for experiment 'nothing'.*python train.py"):
        run(folders + ["experiment=nothing"], "2")
    with pytest.raises(FileNotFoundError, match="nowhere.weights.h5: no such weights file"):
        run(folders, "2", "--weights", str(tmp_path / "nowhere.weights.h5"))
    with pytest.raises(ValueError, match=r"does not fit the configured model \(model.depth: checkpoint 2, configured 3"):
        run(folders + ["model.depth=3"], "2")
    other = tmp_path / "other.weights.h5"
    network.build_unet(config.load_config(overrides=["model.depth=2", "model.base_channels=8"])["model"]).save_weights(other)
    with pytest.raises(ValueError, match=r"other.weights.h5 does not fit the configured model \(model.depth: checkpoint 2, "
                       r"configured 3; model.base_channels: checkpoint 8, configured 16\)"):
        run(folders, "2", "--weights", str(other))


@pytest.mark.parametrize("naming", [["experiment=null"], ["experiment=shipped"]], ids=["preset", "shipped"])
def test_the_shipped_model_stands_in_for_the_untrained_preset_and_files_its_results_as_shipped(
        experiment, naming, tmp_path, monkeypatch, capsys):
    root, folders = experiment
    shipped = tmp_path / "models" / "shipped"
    shutil.copytree(root / "ckpt" / "tiny", shipped)
    monkeypatch.setattr(checkpoints, "SHIPPED", shipped / "best.weights.h5")
    run(folders + naming + [f"test.result_root={tmp_path / 'results'}"], "--list", str(root / "valid_list"))
    assert f"weights: {checkpoints.SHIPPED}" in capsys.readouterr().out
    report = json.loads((tmp_path / "results" / "shipped" / "valid_list" / "metrics.json").read_text())
    assert list(report["videos"]) == [entry[0] for entry in data.read_file_list(root / "valid_list")]
    assert not (tmp_path / "results" / "demo").exists()


def test_a_named_experiment_that_was_never_trained_stops_instead_of_scoring_the_shipped_model(experiment):
    root, folders = experiment
    with pytest.raises(FileNotFoundError, match="no trained weights for experiment 'untrained'.*experiment=shipped"):
        run(folders + ["experiment=untrained"], "--list", str(root / "valid_list"))
    assert not (root / "results" / "untrained").exists()


def test_case_3_without_a_list_says_what_to_do(experiment, tmp_path):
    root, folders = experiment
    with pytest.raises(FileNotFoundError, match="no customized list. Put packed .npy clips in"):
        run(folders + [f"data.lists_dir={tmp_path}"], "3")


BAD_OUTPUTS = [("folder", "is a folder"), ("clip.npy", "must end in .mp4"), ("noext", "must end in .mp4")]


def test_test_py_reads_the_input_settings_of_the_checkpoint(tmp_path):
    """The weights' own config decides the model and how its input was normalised."""
    weights = tmp_path / "model" / "best.weights.h5"
    weights.parent.mkdir()
    saved = config.load_config(overrides=["model.depth=2", "model.base_channels=4", "data.normalization=he",
                                          "data.clip_negative=true", "model.time_padding=zeros"])
    (weights.parent / "config.yaml").write_text(yaml.safe_dump(saved))
    weights.touch()
    cfg, _ = checkpoints.configure(explicit_weights=str(weights))
    assert (cfg["data"]["normalization"], cfg["data"]["clip_negative"]) == ("he", True)
    assert (cfg["model"]["depth"], cfg["model"]["time_padding"]) == (2, "zeros")


@pytest.mark.parametrize("name, message", BAD_OUTPUTS)
def test_bad_output_paths_are_refused_before_inference(experiment, tmp_path, name, message):
    root, folders = experiment
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError, match=message):
        run(folders, "--input", str(root / "customized" / "own.npy"), "--output", str(tmp_path / name))


@pytest.mark.parametrize("argv, message", [
    (["2", "--list", "my_list"], "CASE, --input and --list each name what to enhance: give one of them"),
    (["--input", "a.npy", "--list", "my_list"], "CASE, --input and --list each name what to enhance"),
    (["2", "--output", "out.mp4"], "--output names the video of one --input clip"),
])
def test_arguments_that_would_be_ignored_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        test_script.parse_args(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_case_3_is_the_default():
    assert test_script.parse_args([]).case == 3 and test_script.parse_args(["--input", "a.npy"]).case == 3


def test_a_user_error_is_one_line_and_exit_status_2(tmp_path):
    import subprocess
    import sys
    done = subprocess.run([sys.executable, str(Path(test_script.__file__)), "--input", str(tmp_path / "missing.npy")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'missing.npy'}: no such file or folder"
    assert "Traceback" not in done.stderr


def test_a_killed_test_py_leaves_no_temporary_files(experiment, tmp_path):
    import signal
    import subprocess
    import sys
    import time
    root, folders = experiment
    long_clip = tmp_path / "long.npy"
    np.save(long_clip, np.repeat(np.load(root / "train_he" / "scene0.npy"), 200, axis=0))
    long_clip.with_suffix(".json").write_text((root / "train_he" / "scene0.json").read_text())
    command = [sys.executable, str(Path(test_script.__file__)), "--input", str(long_clip), "--output",
               str(tmp_path / "out.mp4"), "--set", *folders, "test.tile_frames=4", "test.overlap_frames=2"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".tmp*")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert list(tmp_path.glob(".tmp*")), process.communicate()[1][-2000:]
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 128 + signal.SIGTERM
    assert not list(tmp_path.glob(".tmp*")) and not (tmp_path / "out.mp4").exists()


@pytest.fixture
def photo_model(experiment, tmp_path):
    """A per-frame model (other weights than the tiny video model) saved with its config.yaml."""
    root, _ = experiment
    cfg = yaml.safe_load((root / "ckpt" / "tiny" / "config.yaml").read_text())
    cfg["model"]["temporal_kernel"] = 1
    keras.utils.set_random_seed(1)
    (tmp_path / "photo").mkdir()
    network.build_unet(cfg["model"]).save_weights(tmp_path / "photo" / "best.weights.h5")
    (tmp_path / "photo" / "config.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path / "photo" / "best.weights.h5", cfg


def enhanced(enhancer, clip):
    return np.concatenate([rgb for _, rgb in enhancer.enhance(clip)])


def test_one_frame_clips_go_to_the_photo_model(experiment, photo_model, monkeypatch, capsys):
    """test.photo_weights: a 1-frame clip comes out as the per-frame model alone makes it; longer
    clips as the video model makes them. `shipped` routes only beside the shipped model; null never."""
    root, folders = experiment
    photo_weights, photo_cfg = photo_model

    def enhancer(*changes):
        return checkpoints.make_enhancer(*checkpoints.configure([*folders, *SMALL_TILES, *changes]))

    cfg, _ = checkpoints.configure([*folders, *SMALL_TILES])
    clip = data.open_clip(root / "train_he" / "scene0.npy", None, cfg["data"])
    one, two = (dataclasses.replace(clip, packed_raw=clip.packed_raw[:n]) for n in (1, 2))
    per_frame = network.build_unet({**cfg["model"], **photo_cfg["model"]})
    per_frame.load_weights(photo_weights)
    video = network.build_unet(cfg["model"])
    video.load_weights(root / "ckpt" / "tiny" / "best.weights.h5")
    photo_alone, video_alone = TiledEnhancer(per_frame, cfg["test"]), TiledEnhancer(video, cfg["test"])
    assert not np.array_equal(enhanced(photo_alone, one), enhanced(video_alone, one))

    routed = enhancer(f"test.photo_weights={photo_weights}")
    assert f"photos (1-frame clips): {photo_weights}" in capsys.readouterr().out
    np.testing.assert_array_equal(enhanced(routed, one), enhanced(photo_alone, one))
    np.testing.assert_array_equal(enhanced(routed, two), enhanced(video_alone, two))
    np.testing.assert_array_equal(enhanced(enhancer("test.photo_weights=null"), one), enhanced(video_alone, one))

    monkeypatch.setattr(checkpoints, "SHIPPED_PHOTO", photo_weights)
    np.testing.assert_array_equal(enhanced(enhancer(), one), enhanced(video_alone, one))  # a trained experiment
    monkeypatch.setattr(checkpoints, "SHIPPED", root / "ckpt" / "tiny" / "best.weights.h5")
    np.testing.assert_array_equal(enhanced(enhancer(), one), enhanced(photo_alone, one))  # the shipped model


def test_metrics_name_the_photo_model_only_where_a_photo_was_enhanced(experiment, photo_model, tmp_path):
    root, folders = experiment
    photo_weights, _ = photo_model
    cfg, weights = checkpoints.configure([*folders, *SMALL_TILES, f"test.photo_weights={photo_weights}"])
    clip = data.open_clip(root / "train_he" / "scene0.npy", root / "gt_he" / "scene0.npy", cfg["data"])
    photo = dataclasses.replace(clip, name="photo", packed_raw=clip.packed_raw[:1], gt_rgb=clip.gt_rgb[:1])
    for clips, named in (([clip], None), ([clip, photo], str(photo_weights))):
        folder = tmp_path / f"{len(clips)}_clips"
        enhance.evaluate(clips, cfg, weights, folder)
        report = json.loads((folder / "metrics.json").read_text())
        assert report["made_with"]["photo_weights"] == named
        videos = report["videos"]
        if "photo" in videos:  # no frame-to-frame change to score: the list's MSE(MABD) and motion are the video's
            assert np.isnan(videos["photo"]["network"]["motion"])
        for score in ("mse_mabd", "motion"):
            assert report["overall"]["network"][score] == pytest.approx(videos["scene0"]["network"][score])


def test_a_photo_model_for_other_input_is_refused(experiment, photo_model, tmp_path):
    root, folders = experiment
    photo_weights, photo_cfg = photo_model
    photo_cfg["data"]["normalization"] = "he"
    (photo_weights.parent / "config.yaml").write_text(yaml.safe_dump(photo_cfg))
    with pytest.raises(ValueError, match=r"test.photo_weights: .* was trained on other input .*data.normalization"):
        run(folders, "2", "--set", f"test.photo_weights={photo_weights}")
    with pytest.raises(FileNotFoundError, match="test.photo_weights: .*nowhere.weights.h5: no such weights file"):
        run(folders, "2", "--set", f"test.photo_weights={tmp_path / 'nowhere.weights.h5'}")


def checksums(folder):
    """{relative path: sha256} of every file under `folder`: what a run must leave as it was."""
    import hashlib
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def test_a_list_name_that_is_a_path_writes_nothing_over_the_ground_truth(experiment, tmp_path):
    """Issue 40 row 1: `../gt_he/scene1` as a NAME made test.py 2 save NAME.npy over that ground truth."""
    root, folders = experiment
    before = checksums(root / "gt_he")
    escape = tmp_path / "escape_list"
    escape.write_text(f"../../../gt_he/scene1 {root / 'gt_he' / 'scene1.npy'} {root / 'train_he' / 'scene1.npy'}\n")
    with pytest.raises(ValueError, match="must be a plain file name"):
        run(folders, "--list", str(escape))
    assert checksums(root / "gt_he") == before


def test_other_weights_are_filed_under_their_own_name_and_never_over_another_models(experiment, tmp_path, capsys):
    """Issue 40 row 2: --weights filed another model's results under the preset's experiment."""
    root, folders = experiment
    other = tmp_path / "other"
    shutil.copytree(root / "ckpt" / "tiny", other)
    run(folders, "--list", str(root / "valid_list"))
    mine = root / "results" / "tiny" / "valid_list"
    before = checksums(mine)
    run(folders, "--list", str(root / "valid_list"), "--weights", str(other / "best.weights.h5"))
    assert f"results in {root / 'results' / 'other_best' / 'valid_list'}" in capsys.readouterr().out
    assert checksums(mine) == before
    shutil.copy(root / "results" / "other_best" / "valid_list" / "metrics.json", mine / "metrics.json")
    before = checksums(mine)
    with pytest.raises(ValueError, match=r"valid_list holds the results of other weights \(.*other/best.weights.h5\)"):
        run(folders, "--list", str(root / "valid_list"))
    assert checksums(mine) == before
    shutil.rmtree(mine)


def test_a_rerun_stopped_half_way_leaves_the_earlier_results_whole(experiment, monkeypatch):
    """Issue 40 row 10: a re-run stopped after its first clip left new videos beside the old
    metrics.json. The folder is now replaced whole at the end, or not at all; what a kill -9 left
    (a staging folder of a dead PID) is removed by the next run."""
    root, folders = experiment
    run(folders, "--list", str(root / "file_list"))
    results = root / "results" / "tiny" / "file_list"
    before = checksums(results)
    assert len([name for name in before if name.endswith(".mp4")]) == 2
    real = enhance.enhance_clip
    calls = []

    def stopped_on_the_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)
    monkeypatch.setattr(enhance, "enhance_clip", stopped_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        run(folders, "--list", str(root / "file_list"), "--set", "test.self_ensemble=2")
    assert checksums(results) == before
    assert not [p for p in results.parent.iterdir() if p.name.startswith(".tmp")]
    monkeypatch.setattr(enhance, "enhance_clip", real)
    left = results.parent / ".tmp999999.file_list"
    left.mkdir()
    (left / "scene0.mp4").write_bytes(b"")
    run(folders, "--list", str(root / "file_list"), "--set", "test.self_ensemble=2")
    assert not left.exists()
    made_with = json.loads((results / "metrics.json").read_text())["made_with"]
    assert made_with["test"]["self_ensemble"] == 2


def test_an_input_setting_that_contradicts_the_weights_stops(experiment, capsys):
    """Issue 40 row 4: data.normalization=he on weights trained on linear input gave washed-out
    video (6 dB below) without a word."""
    root, folders = experiment
    with pytest.raises(ValueError, match=r"data.normalization=he contradicts the weights .*trained on data.normalization=linear"):
        run(folders, "--list", str(root / "valid_list"), "--set", "data.normalization=he")
    with pytest.raises(ValueError, match=r"data.clip_negative=True contradicts the weights"):
        run(folders, "--list", str(root / "valid_list"), "--set", "data.clip_negative=true")


def test_jax_enhances_a_list_as_tensorflow_does(experiment, tmp_path):
    """Issue 43: test.py on Keras' JAX backend (a GPU machine without TensorFlow) gives the frames
    that TensorFlow gives, within one uint8 level (float32 on both)."""
    import subprocess
    import sys
    root, folders = experiment
    same = [*SMALL_TILES, "model.precision=float32"]
    run(folders + [f"test.result_root={tmp_path / 'tensorflow'}"], "2", "--set", *same)
    command = [sys.executable, str(Path(test_script.__file__)), "2", "--set", *folders,
               f"test.result_root={tmp_path / 'jax'}", *same]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "KERAS_BACKEND": "jax"})
    assert done.returncode == 0, done.stderr[-2000:]
    name = data.read_file_list(root / "test_list")[0][0]
    on_tensorflow, on_jax = (np.load(tmp_path / backend / "tiny" / "test" / f"{name}.npy").astype(int)
                             for backend in ("tensorflow", "jax"))
    assert on_tensorflow.shape == on_jax.shape and np.abs(on_tensorflow - on_jax).max() <= 1


def test_a_raw_folder_given_as_dot_is_named_after_the_folder(experiment, tmp_path, monkeypatch):
    """`--input .` from inside a folder of raw frames: the clip's name (and its video's) is the
    folder's, not empty; it crashed in pathlib ("has an empty name")."""
    root, folders = experiment
    burst = tmp_path / "night"
    burst.mkdir()
    for i in range(2):
        camera_raw.write_dng(burst / f"f{i}.dng", np.random.default_rng(i).integers(64, 400, (32, 48)).astype(np.uint16))
    monkeypatch.chdir(burst)
    run(folders, "--input", ".", "--ratio", "50")
    assert (root / "results" / "tiny" / "input" / "night.mp4").is_file()
