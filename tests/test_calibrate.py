"""calibrate.py: a simulated sensor with known noise, written as DNG and as npy, is recovered; the
profile drives synthesis; bad inputs say what is wrong."""
import json

from pathlib import Path

import numpy as np
import pytest
import yaml

import calibrate
import camera_raw
import config
import data
import synthesis

BLACK = np.array([511.0, 512.0, 513.0, 512.0])  # per packed channel G, B, R, G
WHITE = 4095
SENSOR = {800: {"gain": 0.4, "read": 1.2, "row": 0.3}, 3200: {"gain": 1.6, "read": 2.5, "row": 0.6}}


def exposure(rng, electrons, sensor, frames=8, size=(64, 96)):
    """Packed frames of an evenly lit (or, with 0 electrons, capped) sensor: Poisson electrons
    times the gain, Gaussian read noise, one offset per raw row, black level, 12-bit rounding."""
    shape = (frames, *size, 4)
    dn = rng.poisson(electrons, shape) * sensor["gain"] + rng.normal(0, sensor["read"], shape)
    mosaic = data.mosaic_from_packed(dn + BLACK)
    mosaic += rng.normal(0, sensor["row"], (frames, mosaic.shape[1], 1))
    return data.packed_from_mosaic(np.clip(np.round(mosaic), 0, WHITE).astype(np.uint16))


def write_sensor(root, as_dng):
    """Bias frames per ISO, and flats at four levels per ISO; returns the --bias and --flats args."""
    rng = np.random.default_rng(0)
    bias, flats = [], []
    for iso, sensor in SENSOR.items():
        levels = {"bias": 0, **{f"flat{e}": e for e in (40, 150, 500, 1200)}}
        for name, electrons in levels.items():
            packed = exposure(rng, electrons, sensor, frames=16 if name == "bias" else 4)
            path = root / f"{name}_{iso}"
            if as_dng:
                path.mkdir()
                for i, frame in enumerate(data.mosaic_from_packed(packed)):
                    camera_raw.write_dng(path / f"{i:02d}.dng", frame, "GBRG", black=512, white=WHITE)
            else:
                path = path.with_suffix(".npy")
                np.save(path, packed)
                path.with_suffix(".json").write_text(json.dumps({"white_level": WHITE}))  # a sidecar, as a camera's files record it
            (bias if name == "bias" else flats).append(f"{iso}={path}")
    return bias, flats


@pytest.mark.parametrize("as_dng", [False, True])
def test_a_simulated_sensor_is_recovered(tmp_path, as_dng, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bias, flats = write_sensor(tmp_path, as_dng)
    calibrate.main(["--bias", *bias, "--flats", *flats, "--output", str(tmp_path / "cam.yaml")])
    profile = yaml.safe_load((tmp_path / "cam.yaml").read_text())
    for iso, sensor in SENSOR.items():
        got = profile["isos"][iso]
        assert np.abs(np.array(got["black_level"]) - BLACK).max() < 0.5, got["black_level"]
        assert got["read_noise"] == pytest.approx(sensor["read"], rel=0.05)
        assert got["row_noise"] == pytest.approx(sensor["row"], rel=0.05)
        assert got["shot_gain"] == pytest.approx(sensor["gain"], rel=0.05)
    slope, intercept = profile["read_noise_vs_gain"]
    assert np.exp(slope * np.log(1.6) + intercept) == pytest.approx(2.5, rel=0.05)
    assert (tmp_path / "figure" / "cam_photon_transfer.png").is_file()
    assert synthesis.load_profile(tmp_path / "cam.yaml")["white_level"] == WHITE  # what synthesis needs is there


def test_synthesis_follows_the_profile(tmp_path):
    profile = {"shot_gain_range": [0.4, 1.6], "read_noise_vs_gain": [0.5, float(np.log(2.0))],
               "row_noise_vs_gain": [0.0, float(np.log(0.3))], "black_level": [64, 64, 64, 64], "white_level": 1023}
    (tmp_path / "cam.yaml").write_text(yaml.safe_dump(profile))
    synth = config.load_config(overrides=[f"synthesis.camera={tmp_path / 'cam.yaml'}"])["synthesis"]
    params = synthesis.draw_camera_params(np.random.default_rng(0), synth)
    assert 0.4 <= params.shot_gain <= 1.6 and (params.black_level, params.white_level) == (64, 1023)
    assert params.read_noise == pytest.approx(2.0 * params.shot_gain ** 0.5)
    assert params.row_noise == pytest.approx(0.3)


def test_bad_calibration_inputs_say_what_is_wrong(tmp_path):
    rng = np.random.default_rng(1)
    np.save(tmp_path / "one.npy", exposure(rng, 0, SENSOR[800], frames=1))
    with pytest.raises(ValueError, match="1 bias frame"):
        calibrate.calibrate({800: [tmp_path / "one.npy"]}, {})
    np.save(tmp_path / "bias.npy", exposure(rng, 0, SENSOR[800]))
    np.save(tmp_path / "saturated.npy", np.full((4, 8, 8, 4), WHITE, np.uint16))
    with pytest.raises(ValueError, match="fewer than two usable brightness levels"):
        calibrate.calibrate({800: [tmp_path / "bias.npy"]}, {800: [tmp_path / "saturated.npy"]})
    with pytest.raises(ValueError, match="give ISO=FOLDER"):
        calibrate.parse_sets(["bias/"], "bias")
    with pytest.raises(ValueError, match="ISO 800 is given twice"):
        calibrate.parse_sets(["800=a/", "800=b/"], "bias")
    assert calibrate.parse_sets(["800=a/", "800=b/"], "flats") == {800: [Path("a/"), Path("b/")]}  # one level each
    with pytest.raises(FileNotFoundError, match="no such camera profile"):
        synthesis.load_profile(tmp_path / "missing.yaml")


def test_a_folder_of_mixed_or_mislabelled_iso_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "bias"
    folder.mkdir()
    for i, frame in enumerate(data.mosaic_from_packed(exposure(np.random.default_rng(2), 0, SENSOR[800], frames=4))):
        camera_raw.write_dng(folder / f"{i:02d}.dng", frame, "GBRG", black=512, white=WHITE)
    # What rawpy's `other.iso_speed` reads from a camera's EXIF (our minimal DNGs carry none).
    recorded = {"00.dng": 800.0, "01.dng": 800.0, "02.dng": 1600.0, "03.dng": 800.0}
    frame_meta = camera_raw.frame_meta
    monkeypatch.setattr(camera_raw, "frame_meta", lambda raw, path: {**frame_meta(raw, path), "iso": recorded[path.name]})
    with pytest.raises(ValueError, match=r"02.dng: differs from 00.dng in iso"):
        calibrate.calibrate({800: [folder]}, {})
    recorded["02.dng"] = 800.0
    with pytest.raises(ValueError, match="bias: the files record ISO 800, the command line says 3200"):
        calibrate.calibrate({3200: [folder]}, {})
    assert calibrate.calibrate({800: [folder]}, {})[0]["isos"][800]["read_noise"] > 0
    recorded.update(dict.fromkeys(recorded, 0.0))  # no ISO recorded: the command line's holds
    assert 3200 in calibrate.calibrate({3200: [folder]}, {})[0]["isos"]


def test_camera_experiment_films_the_noisy_sensor_it_names(tmp_path):
    """lab/camera_experiment.py's camera lies outside every generic noise range, and calibrate.py
    recovers it from the frames the experiment writes."""
    from lab import camera_experiment

    cfg = config.load_config()
    bias, flats = camera_experiment.write_calibration_frames(tmp_path, cfg)
    profile, _ = calibrate.calibrate(calibrate.parse_sets(bias, "bias"), calibrate.parse_sets(flats, "flats"))
    assert profile["white_level"] == cfg["synthesis"]["white_level"]
    for iso, (gain, read, row) in camera_experiment.SENSOR.items():
        assert gain > cfg["synthesis"]["shot_gain_range"][1] and read > cfg["synthesis"]["read_noise_range"][1]
        assert row > cfg["synthesis"]["row_noise_range"][1]
        got = profile["isos"][iso]
        assert (got["shot_gain"], got["read_noise"], got["row_noise"]) == pytest.approx((gain, read, row), rel=0.05)
