"""Reading clips: validation errors that name the file, the `he` and `linear` normalisations."""
import json

import numpy as np
import pytest

import config
import data
import synthesis
from atomic import atomic_output


def original_histeq(clip, bins=65536):
    """The original's equalisation, written as the 2019 script did it."""
    hist, edges = np.histogram(clip.flatten(), bins, density=True)
    cdf = hist.cumsum()
    cdf = 65535 * cdf / cdf[-1]
    return np.interp(clip.flatten(), edges[:-1], cdf).reshape(clip.shape)


def write_clip(folder, name, packed_raw, gt_rgb=None, meta=None):
    (folder / "in").mkdir(exist_ok=True)
    (folder / "gt").mkdir(exist_ok=True)
    np.save(folder / "in" / f"{name}.npy", packed_raw)
    if gt_rgb is not None:
        np.save(folder / "gt" / f"{name}.npy", gt_rgb)
    if meta is not None:
        (folder / "in" / f"{name}.json").write_text(json.dumps(meta))
    return folder / "in" / f"{name}.npy", folder / "gt" / f"{name}.npy"


def linear_cfg(**data_overrides):
    return config.load_config(overrides=[f"data.{k}={v}" for k, v in data_overrides.items()])["data"]


@pytest.mark.parametrize("low, high", [(256, 4095), (0, 65535), (300, 310)])
def test_he_lut_equals_the_original_equalisation(low, high):
    clip = np.random.default_rng(0).integers(low, high + 1, (5, 6, 7, 4)).astype(np.uint16)
    expected = np.minimum(original_histeq(clip) / 65535, 1.0)
    np.testing.assert_allclose(data.he_lut(clip, chunk_frames=2)[clip], expected, atol=1e-6)


def test_linear_normalisation_by_hand():
    meta = {"black_level": 100, "white_level": 1100, "ratio": 10, "wb_gains": [2.0, 1.0, 1.5]}
    black, gains, ccm = data.linear_params(meta, linear_cfg(apply_ccm=False), "clip")
    assert ccm is None
    frames = np.array([[[[150, 120, 130, 90]]]], np.uint16)  # G, B, R, G (the last below black)
    normalize = data.make_normalizer(frames, meta, linear_cfg(apply_ccm=False), "clip")
    # Signed: the pixel 10 DN below black keeps its negative value, (90 - 100) / 1000 * 10.
    expected = [50 / 1000 * 10, 20 / 1000 * 10 * 1.5, 30 / 1000 * 10 * 2.0, -0.1]
    np.testing.assert_allclose(normalize(frames)[0, 0, 0], expected, rtol=1e-6)
    clipped = data.make_normalizer(frames, meta, linear_cfg(apply_ccm=False, clip_negative=True), "clip")
    np.testing.assert_allclose(clipped(frames)[0, 0, 0], expected[:3] + [0.0], rtol=1e-6)
    # data.ratio in the config wins over the sidecar's
    normalize = data.make_normalizer(frames, meta, linear_cfg(apply_ccm=False, ratio=1), "clip")
    np.testing.assert_allclose(normalize(frames)[0, 0, 0, 0], 0.05, rtol=1e-6)


def test_signed_input_keeps_the_mean_of_dark_pixels_unbiased():
    """At ratio 200 a dark pixel holds a few DN around black: clipping at 0 lifts its mean, signed
    normalisation keeps it (the noise averages out)."""
    rng = np.random.default_rng(0)
    black, signal = 256, 0.5  # DN above black
    frames = np.round(black + signal + rng.normal(0, 3.0, (1, 64, 64, 4))).astype(np.uint16)
    meta = {"black_level": black, "white_level": 4095, "ratio": 1}
    unit = 1 / (4095 - black)
    signed = data.make_normalizer(frames, meta, linear_cfg(apply_ccm=False), "clip")(frames)
    clipped = data.make_normalizer(frames, meta, linear_cfg(apply_ccm=False, clip_negative=True), "clip")(frames)
    assert abs(signed.mean() / unit - signal) < 0.1
    assert clipped.mean() / unit > signal + 0.5


def test_packed_colour_matrix_keeps_green_detail():
    ccm = np.array([[1.5, -0.3, -0.2], [-0.2, 1.4, -0.2], [0.0, -0.5, 1.5]], np.float32)
    packed = np.array([0.30, 0.20, 0.40, 0.34], np.float32)  # G1, B, R, G2
    out = data.packed_colour_matrix(ccm) @ packed
    rgb = ccm @ np.array([0.40, 0.32, 0.20])
    np.testing.assert_allclose(out, [0.30 + rgb[1] - 0.32, rgb[2], rgb[0], 0.34 + rgb[1] - 0.32], rtol=1e-5)


def test_linear_light_with_a_colour_matrix_by_hand():
    ccm = [[1.5, -0.3, -0.2], [-0.2, 1.4, -0.2], [0.0, -0.5, 1.5]]
    meta = {"black_level": 100, "white_level": 1100, "ratio": 10, "wb_gains": [2.0, 1.0, 1.5], "ccm": ccm}
    frames = np.array([[[[150, 120, 130, 90]], [[400, 100, 700, 420]]]], np.uint16)  # G, B, R, G
    linear = data.make_linear(meta, linear_cfg(), "clip")(frames)
    for pixel, (g1, b, r, g2) in zip(linear[0, :, 0], frames[0, :, 0].astype(float)):
        g1, b, r, g2 = (g1 - 100) / 100, (b - 100) / 100 * 1.5, (r - 100) / 100 * 2.0, (g2 - 100) / 100
        rgb = np.array(ccm) @ [r, (g1 + g2) / 2, b]
        shift = rgb[1] - (g1 + g2) / 2
        np.testing.assert_allclose(pixel, [g1 + shift, rgb[2], rgb[0], g2 + shift], rtol=1e-5, atol=1e-6)


def test_reader_errors_name_the_file(tmp_path):
    good_raw, good_gt = np.zeros((2, 4, 6, 4), np.uint16), np.zeros((2, 8, 12, 3), np.uint8)
    cfg = linear_cfg(normalization="he")
    cases = [
        ("dtype", good_raw.astype(np.float32), good_gt, "must be uint16, got float32"),
        ("ndim", np.zeros((4, 6, 4), np.uint16), good_gt, r"shape \(frames, H/2, W/2, 4\)"),
        ("gtshape", good_raw, np.zeros((2, 8, 10, 3), np.uint8), r"2 x packed width.*\(2, 8, 12, 3\)"),
        ("frames", good_raw, np.zeros((3, 8, 12, 3), np.uint8), r"got \(3, 8, 12, 3\)"),
        ("gtdtype", good_raw, good_gt.astype(np.uint16), "must be uint8"),
    ]
    for name, packed_raw, gt_rgb, message in cases:
        input_path, gt_path = write_clip(tmp_path, name, packed_raw, gt_rgb)
        with pytest.raises(ValueError, match=f"{name}.npy.*{message}"):
            data.open_clip(input_path, gt_path, cfg)

    input_path, gt_path = write_clip(tmp_path, "corrupt", good_raw, good_gt)
    input_path.write_bytes(input_path.read_bytes()[:100])  # truncated mid-array
    with pytest.raises(ValueError, match="corrupt.npy: not a readable .npy file"):
        data.open_clip(input_path, gt_path, cfg)
    input_path.write_bytes(b"not an npy file at all")
    with pytest.raises(ValueError, match="corrupt.npy: not a readable .npy file"):
        data.open_clip(input_path, gt_path, cfg)
    with pytest.raises(FileNotFoundError, match="missing.npy: no such file"):
        data.open_clip(tmp_path / "missing.npy", None, cfg)


def test_linear_mode_needs_a_sidecar(tmp_path):
    input_path, gt_path = write_clip(tmp_path, "bare", np.zeros((1, 2, 2, 4), np.uint16), np.zeros((1, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match=r"bare.npy: linear normalisation needs black_level, white_level, ratio.*bare.json"):
        data.open_clip(input_path, gt_path, linear_cfg())
    data.open_clip(input_path, gt_path, linear_cfg(normalization="he"))  # fine without one
    (tmp_path / "in" / "bare.json").write_text("{broken")
    with pytest.raises(ValueError, match="bare.json: not valid JSON"):
        data.open_clip(input_path, gt_path, linear_cfg())
    (tmp_path / "in" / "bare.json").write_text(json.dumps({"cfa": "RGGB", "black_level": 0, "white_level": 1}))
    with pytest.raises(ValueError, match="bare.json: the packed input must be in GBRG order"):
        data.open_clip(input_path, gt_path, linear_cfg())


def test_input_without_ground_truth(tmp_path):
    input_path, _ = write_clip(tmp_path, "own", np.ones((1, 2, 2, 4), np.uint16))
    clip = data.open_clip(input_path, input_path, linear_cfg(normalization="he"))  # customized_list style
    assert clip.gt_rgb is None and clip.name == "own"


def test_atomic_output_keeps_the_old_file_on_a_crash(tmp_path):
    target = tmp_path / "result.npy"
    np.save(target, np.arange(3))
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            np.save(tmp, np.arange(1000))
            raise RuntimeError("crash mid-write")
    assert np.load(target).tolist() == [0, 1, 2]
    assert list(tmp_path.iterdir()) == [target]
    with atomic_output(target) as tmp:
        np.save(tmp, np.arange(4))
    assert np.load(target).tolist() == [0, 1, 2, 3]


def test_file_list_parsing(tmp_path):
    (tmp_path / "list").write_text("a gt/a.npy in/a.npy\n\nb gt/b.npy in/b.npy\n")
    assert data.read_file_list(tmp_path / "list") == [("a", "gt/a.npy", "in/a.npy"), ("b", "gt/b.npy", "in/b.npy")]
    (tmp_path / "bad").write_text("a gt/a.npy\n")
    with pytest.raises(ValueError, match=r"bad:1: expected 'NAME GT_PATH INPUT_PATH'"):
        data.read_file_list(tmp_path / "bad")


def test_config_rejects_unknown_and_bad_values(tmp_path):
    with pytest.raises(KeyError, match="unknown key 'normalisation'"):
        config.load_config(overrides=["data.normalisation=he"])
    with pytest.raises(ValueError, match="data.normalization must be one of"):
        config.load_config(overrides=["data.normalization=gamma"])
    with pytest.raises(ValueError, match="synthesis.height must be even"):
        config.load_config(overrides=["synthesis.height=31"])
    (tmp_path / "c.yaml").write_text("data:\n  normalization: he\nsynthesis:\n  frames: 7\n")
    cfg = config.load_config(tmp_path / "c.yaml", ["synthesis.frames=9"])
    assert cfg["data"]["normalization"] == "he" and cfg["synthesis"]["frames"] == 9  # command line wins
    (tmp_path / "evil.yaml").write_text("data: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(Exception, match="could not determine a constructor"):
        config.load_config(tmp_path / "evil.yaml")


def test_read_frames_equals_slicing_without_mapping(tmp_path):
    clip = np.random.default_rng(0).integers(0, 4096, (7, 3, 5, 4)).astype(np.uint16)
    np.save(tmp_path / "clip.npy", clip)
    mapped = data.load_packed_raw(tmp_path / "clip.npy")
    for start, stop in [(0, 7), (2, 5), (5, 9), (6, 7)]:
        frames = data.read_frames(mapped, start, stop)
        assert not isinstance(frames, np.memmap)
        np.testing.assert_array_equal(frames, clip[start:stop])
    np.testing.assert_array_equal(data.read_frames(clip, 1, 3), clip[1:3])  # plain arrays too


BAD_SIDECARS = [
    ({"ratio": -100}, "ratio must be one number, finite and positive"),
    ({"ratio": 0}, "ratio must be one number, finite and positive"),
    ({"ratio": float("nan")}, "ratio must be one number, finite and positive"),
    ({"ratio": "abc"}, "ratio must be one number"),
    ({"white_level": 200}, "levels must satisfy 0 <= black_level < white_level <= 65535"),
    # Issue 40 row 5: values that read as numbers but cannot be right.
    ({"black_level": -500}, "levels must satisfy 0 <= black_level"),
    ({"white_level": 1e9}, "levels must satisfy .* got .*white_level 1000000000.0"),
    ({"ratio": True}, "ratio must be one number"),
    ({"ratio": "256"}, "ratio must be one number"),
    ({"ccm": [[0, 0, 0]] * 3}, "ccm .* is singular"),
    ({"ccm": [[1, 0, 0], [1, 0, 0], [0, 0, 1]]}, "ccm .* is singular"),
    ({"fps": 1e9}, "fps must be between 1 and 1000"),
    ({"fps": 1e-4}, "fps must be between 1 and 1000"),
    ({"black_level": None}, "black_level must be one number or 4 numbers"),
    ({"black_level": [256, 256, 256]}, "black_level must be one number or 4 numbers"),
    ({"wb_gains": [2.0, 1.0]}, "wb_gains must be 3 numbers, finite and positive"),
    ({"ccm": [[1, 0], [0, 1]]}, "ccm must be 3x3 numbers"),
    # The mp4's frame rate: 0 fell back to test.fps unsaid, a negative one failed inside ffmpeg.
    ({"fps": 0}, "fps must be one number, finite and positive"),
    ({"fps": -3}, "fps must be one number, finite and positive"),
    ({"fps": "abc"}, "fps must be one number"),
    # Misspelt, the white balance would silently be 1, 1, 1 and the black level the config's.
    ({"wb_gain": [2, 1, 1.5]}, "unknown key 'wb_gain': did you mean 'wb_gains'?"),
    ({"blacklevel": 256}, "unknown key 'blacklevel': did you mean 'black_level'?"),
    # rawpy's names for two of them, and a frame rate spelt out: too far apart for a typo.
    ({"color_matrix": np.eye(3).tolist()}, "unknown key 'color_matrix': did you mean 'ccm'?"),
    ({"camera_whitebalance": [2, 1, 1.5, 0]}, "unknown key 'camera_whitebalance': did you mean 'wb_gains'?"),
    ({"frame_rate": 30}, "unknown key 'frame_rate': did you mean 'fps'?"),
]


@pytest.mark.parametrize("change, message", BAD_SIDECARS)
def test_impossible_sidecar_values_name_the_file(tmp_path, change, message):
    meta = {"black_level": 256, "white_level": 4095, "ratio": 100, "wb_gains": [2, 1, 1.5], "ccm": np.eye(3).tolist()}
    input_path, _ = write_clip(tmp_path, "clip", np.full((1, 2, 2, 4), 300, np.uint16), meta={**meta, **change})
    with pytest.raises(ValueError, match=f"clip.json: {message}"):
        data.open_clip(input_path, None, linear_cfg())


def test_a_sidecar_frame_rate_is_checked_for_histogram_equalised_input_too(tmp_path):
    input_path, _ = write_clip(tmp_path, "clip", np.full((1, 2, 2, 4), 300, np.uint16), meta={"fps": -3})
    with pytest.raises(ValueError, match="clip.json: fps must be one number, finite and positive"):
        data.open_clip(input_path, None, linear_cfg(normalization="he"))
    write_clip(tmp_path, "clip", np.full((1, 2, 2, 4), 300, np.uint16), meta={"fps": 12.5})
    assert data.open_clip(input_path, None, linear_cfg(normalization="he")).fps == 12.5


def test_a_sidecar_may_carry_notes_and_synthesis_writes_only_known_keys(tmp_path):
    meta = {"black_level": 256, "white_level": 4095, "ratio": 100, "camera": "mine", "lens": "50 mm"}
    input_path, _ = write_clip(tmp_path, "clip", np.full((1, 2, 2, 4), 300, np.uint16), meta=meta)
    assert data.open_clip(input_path, None, linear_cfg()).meta["camera"] == "mine"
    cfg = config.load_config(overrides=[f"data.input_dir={tmp_path / 'in'}", f"data.gt_dir={tmp_path / 'gt'}"])
    synthesis.make_pair("made", np.full((2, 16, 16, 3), 128, np.uint8), 24, "test", cfg)
    assert set(json.loads((tmp_path / "in" / "made.json").read_text())) <= set(data.SIDECAR_KEYS)


def test_fortran_order_clip_reads_as_saved(tmp_path):
    clip = np.random.default_rng(0).integers(0, 4096, (5, 6, 7, 4)).astype(np.uint16)
    np.save(tmp_path / "f.npy", np.asfortranarray(clip))
    frames = data.load_packed_raw(tmp_path / "f.npy")
    np.testing.assert_array_equal(data.read_frames(frames, 1, 4), clip[1:4])


def test_big_endian_clip_reads_as_saved(tmp_path):
    clip = np.random.default_rng(0).integers(0, 4096, (3, 4, 5, 4)).astype(">u2")
    np.save(tmp_path / "b.npy", clip)
    frames = data.load_packed_raw(tmp_path / "b.npy")
    np.testing.assert_array_equal(data.read_frames(frames, 0, 3), clip)


def test_frames_of_a_sliced_memory_map_are_the_slice_s(tmp_path):
    clip = np.random.default_rng(0).integers(0, 4096, (10, 4, 5, 4)).astype(np.uint16)
    np.save(tmp_path / "c.npy", clip)
    sliced = data.load_packed_raw(tmp_path / "c.npy")[6:9]
    np.testing.assert_array_equal(data.read_frames(sliced, 0, 2), clip[6:8])


def test_auto_ratio_finds_the_exposure_of_a_clip_whose_bright_end_is_known():
    """A scene whose luminance is uniform from 0 to 1 (its 99th percentile 0.99 x data.AUTO_TARGET
    after scaling by AUTO_TARGET / 0.99), filmed with noise at ratio 100 by synthesis: the ratio
    chosen from the dark frames is 100, within the noise (2 %)."""
    rng = np.random.default_rng(0)
    height, width = 256, 384
    ramp = np.linspace(0, 1, height * width, dtype=np.float32).reshape(height, width)
    rng.shuffle(ramp.reshape(-1))
    scene = np.repeat(np.kron(ramp[::8, ::8], np.ones((8, 8), np.float32))[..., None], 3, axis=-1)  # grey, 8x8 cells
    scene *= data.AUTO_TARGET / np.percentile(scene, data.AUTO_PERCENTILE)
    params = synthesis.CameraParams(ratio=100.0, shot_gain=0.5, read_noise=1.5, row_noise=0.2, red_gain=2.0, blue_gain=1.7,
                                    brightness=1.0, rgb_to_cam=np.eye(3).tolist(), black_level=256, white_level=4095)
    camera = scene * np.float32([1 / params.red_gain, 1.0, 1 / params.blue_gain])
    packed_raw = data.packed_from_mosaic(synthesis.expose(synthesis.mosaic(camera)[None].repeat(4, axis=0), params, rng))
    meta = {"black_level": 256, "white_level": 4095, "wb_gains": [2.0, 1.0, 1.7]}
    ratio = data.auto_ratio(packed_raw, meta, {**config.DEFAULTS["data"], "ratio": "auto"}, "clip")
    assert ratio == pytest.approx(100, rel=0.02)
