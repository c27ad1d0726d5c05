"""Synthesis: the CFA order, the colour pipeline round trip, the noise model, reproducibility."""
import dataclasses
import json

import cv2
import imageio_ffmpeg
import numpy as np
import pytest

import config
import data
import synthesis


def known_params(**changes):
    params = synthesis.CameraParams(
        ratio=1.0, shot_gain=1e-4, read_noise=0.0, row_noise=0.0, red_gain=2.0, blue_gain=1.7,
        brightness=1.0, rgb_to_cam=np.eye(3).tolist(), black_level=256, white_level=4095)
    return dataclasses.replace(params, **changes)


def test_mosaic_and_pack_follow_gbrg():
    rgb = np.broadcast_to(np.array([10, 20, 30], np.uint16), (1, 4, 6, 3))
    mosaic = synthesis.mosaic(rgb)
    assert mosaic[0, :2, :2].tolist() == [[20, 30], [10, 20]]  # [[G, B], [R, G]]
    packed = data.packed_from_mosaic(mosaic)
    assert packed.shape == (1, 2, 3, 4)
    assert packed[0, 1, 2].tolist() == [20, 30, 10, 20]  # channels G, B, R, G
    assert data.channel_index("G") == [0, 3] and data.channel_index("R") == [2]


@pytest.mark.parametrize("ratio, brightness", [(1.0, 1.0), (2.0, 0.5)])
def test_clip_round_trips_through_the_linear_reader(tiny_cfg, ratio, brightness):
    """Synthesise without noise, read back in `linear` mode with the sidecar's ratio, white balance
    and colour matrix: each packed channel must hold the linear sRGB value of its CFA colour, whatever
    the scene's brightness draw (the recorded ratio includes it)."""
    rng = np.random.default_rng(1)
    blocks = rng.integers(40, 220, (3, 8, 12, 3), dtype=np.uint8)  # one colour per 2x2 block
    gt_rgb = blocks.repeat(2, axis=1).repeat(2, axis=2)
    params = synthesis.draw_camera_params(rng, tiny_cfg["synthesis"])
    params = dataclasses.replace(params, ratio=ratio, shot_gain=1e-4, read_noise=0.0, row_noise=0.0, brightness=brightness)
    synthesis.write_pair("clip", gt_rgb, synthesis.synthesize(gt_rgb, params, rng),
                         synthesis.sidecar(params, 30.0, "test"), tiny_cfg["data"])

    clip = data.open_clip(f"{tiny_cfg['data']['input_dir']}/clip.npy", f"{tiny_cfg['data']['gt_dir']}/clip.npy",
                          tiny_cfg["data"])
    assert clip.packed_raw.dtype == np.uint16 and clip.packed_raw.shape == (3, 8, 12, 4)
    assert clip.gt_rgb.shape == (3, 16, 24, 3) and isinstance(clip.packed_raw, np.memmap)
    assert clip.fps == 30.0
    y = blocks / 255.0
    linear = (0.5 - np.sin(np.arcsin(1 - 2 * y) / 3)) ** 2.2  # hand-written inverse tone and gamma
    expected = linear[..., [1, 2, 0, 1]]  # G, B, R, G
    # Rounding to whole DN, amplified by the ratio, white balance and colour matrix, is the tolerance.
    np.testing.assert_allclose(clip.normalize(np.asarray(clip.packed_raw)), expected, atol=2e-3 * ratio / brightness)


def test_flat_patch_matches_poisson_gaussian_prediction():
    grey, ratio, gain, read, row = 180, 20.0, 0.8, 1.5, 0.4
    params = known_params(ratio=ratio, shot_gain=gain, read_noise=read, row_noise=row)
    gt_rgb = np.full((16, 128, 128, 3), grey, np.uint8)
    packed = synthesis.synthesize(gt_rgb, params, np.random.default_rng(0)).astype(np.float64)

    y = grey / 255
    linear = (0.5 - np.sin(np.arcsin(1 - 2 * y) / 3)) ** 2.2
    # Identity camera matrix: camera RGB = linear sRGB; the inverse white balance divides R and B.
    camera = np.array([linear, linear / params.blue_gain, linear / params.red_gain, linear])  # G, B, R, G
    signal_dn = camera / ratio * (4095 - 256)
    expected_var = gain * signal_dn + read**2 + row**2 + 1 / 12  # shot + read + row + rounding
    for k in range(4):
        channel = packed[..., k]
        assert abs(channel.mean() - (256 + signal_dn[k])) < 0.02 * signal_dn[k]
        assert channel.var() == pytest.approx(expected_var[k], rel=0.05)


def test_row_noise_is_shared_along_each_raw_row():
    params = known_params(ratio=1e6, row_noise=5.0, read_noise=0.5, shot_gain=1.0)
    packed = synthesis.synthesize(np.zeros((2, 64, 256, 3), np.uint8), params, np.random.default_rng(0))
    row_means = packed[..., 0].astype(np.float64).mean(axis=-1)  # G of even raw rows
    assert row_means.std() > 3.0  # rows differ by the row noise ...
    assert packed[..., 0].astype(np.float64).std(axis=-1).mean() < 1.0  # ... pixels within a row don't


def test_parameters_are_drawn_once_per_clip(tiny_cfg):
    params = synthesis.draw_camera_params(np.random.default_rng(3), tiny_cfg["synthesis"])
    low, high = tiny_cfg["synthesis"]["ratio_range"]
    assert low <= params.ratio <= high
    assert np.allclose(np.sum(params.rgb_to_cam, axis=1), 1.0)
    gt_rgb = np.full((6, 32, 32, 3), 200, np.uint8)  # a static scene must not flicker
    packed = synthesis.synthesize(gt_rgb, dataclasses.replace(params, ratio=2.0), np.random.default_rng(0))
    frame_means = packed.reshape(6, -1).mean(axis=1)
    assert frame_means.std() < 0.01 * frame_means.mean()


def write_test_video(path, frames=6, size=(64, 48)):
    rng = np.random.default_rng(0)
    writer = imageio_ffmpeg.write_frames(str(path), size, fps=12, macro_block_size=1)
    writer.send(None)
    for _ in range(frames):
        writer.send(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8).tobytes())
    writer.close()


def test_command_makes_pairs_from_a_video_and_an_image(tiny_cfg, tmp_path):
    write_test_video(tmp_path / "walk.mp4")
    cv2.imwrite(str(tmp_path / "still.png"), np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8))
    synthesis.main([str(tmp_path / "walk.mp4"), str(tmp_path / "still.png"),
                    "--set", f"data.input_dir={tiny_cfg['data']['input_dir']}",
                    f"data.gt_dir={tiny_cfg['data']['gt_dir']}", "synthesis.frames=4",
                    "synthesis.height=32", "synthesis.width=48"])
    for name, fps in (("walk", 12.0), ("still", synthesis.STILL_FPS)):
        clip = data.open_clip(f"{tiny_cfg['data']['input_dir']}/{name}.npy",
                              f"{tiny_cfg['data']['gt_dir']}/{name}.npy", tiny_cfg["data"])
        assert clip.packed_raw.shape == (4, 16, 24, 4)
        meta = json.loads(data.sidecar_path(f"{tiny_cfg['data']['input_dir']}/{name}.npy").read_text())
        assert meta["fps"] == fps and meta["cfa"] == config.CFA
        assert {"black_level", "white_level", "ratio", "wb_gains", "ccm"} <= set(meta)
        assert np.asarray(meta["ccm"]).shape == (3, 3)
    still = np.load(f"{tiny_cfg['data']['gt_dir']}/still.npy")
    assert np.abs(np.diff(still.astype(float), axis=0)).mean() > 0.5  # the pan and zoom moves it


def test_two_sources_of_one_name_stop_before_either_is_written(tiny_cfg, tmp_path):
    """Issue 40 row 8: a/good.png and b/good.png printed "wrote 2 pairs"; the second replaced the first."""
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "good.png"), np.zeros((40, 60, 3), np.uint8))
    with pytest.raises(ValueError, match="two sources would make the clip 'good'"):
        synthesis.main([str(tmp_path / "a" / "good.png"), str(tmp_path / "b" / "good.png"),
                        "--set", f"data.input_dir={tmp_path / 'in'}", f"data.gt_dir={tmp_path / 'gt'}"])
    assert not (tmp_path / "in").exists()


def test_images_of_every_depth_make_the_same_clip_and_a_broken_file_one_line(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    synth_cfg = {**config.load_config()["synthesis"], "frames": 2, "height": 32, "width": 48}
    clips = []
    for depth, pixels in (("8", image), ("16", image.astype(np.uint16) * 257), ("float", image.astype(np.float32) / 255)):
        (tmp_path / depth).mkdir()
        path = tmp_path / depth / ("a.tif" if depth == "float" else "a.png")
        cv2.imwrite(str(path), pixels)
        name, _, loader = synthesis.file_source(path)
        clips.append(loader(synth_cfg)[0])
    np.testing.assert_array_equal(clips[1], clips[0])
    np.testing.assert_array_equal(clips[2], clips[0])
    (tmp_path / "broken.png").write_text("not an image")
    with pytest.raises(ValueError, match=r"broken.png: ffmpeg cannot read it as a video \([^\n]*\)$"):
        synthesis.file_source(tmp_path / "broken.png")[2](synth_cfg)


def test_video_shorter_than_the_clip_is_an_error(tmp_path):
    write_test_video(tmp_path / "short.mp4", frames=3)
    with pytest.raises(ValueError, match="short.mp4.*only 3"):
        synthesis.video_clip(tmp_path / "short.mp4", 0, {"frames": 4, "height": 32, "width": 48})


def test_same_seed_gives_identical_files(tiny_cfg, tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    sources = [("pic", "test", lambda synth_cfg: synthesis.still_clip(image, "pic", synth_cfg))]

    def build(folder, seed):
        cfg = config.load_config(overrides=[f"data.input_dir={tmp_path / folder / 'in'}",
                                            f"data.gt_dir={tmp_path / folder / 'gt'}", "synthesis.frames=3",
                                            "synthesis.height=16", "synthesis.width=16", f"synthesis.seed={seed}"])
        synthesis.synthesize_sources(sources, cfg)
        return [(tmp_path / folder / sub / f"pic.{ext}").read_bytes()
                for sub, ext in (("in", "npy"), ("in", "json"), ("gt", "npy"))]

    assert build("a", 5) == build("b", 5)
    assert build("c", 6)[0] != build("a", 5)[0]
