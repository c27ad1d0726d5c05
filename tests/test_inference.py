"""inference.py, metrics.py, baselines.py: tiling, blending, streaming, metrics, mp4 and baselines."""
import contextlib
import os
import signal
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import baselines
import config
import data
import inference
import metrics
import network
import synthesis
import video_io
import views
from video_io import VideoWriter, read_video, to_uint8, write_video


def textured_model(depth=2, temporal_kernel=3):
    """A small untrained U-Net whose output spans the range, so tiling differences would show."""
    import keras
    keras.utils.set_random_seed(0)
    model = network.build_unet(config.load_config(overrides=[
        f"model.depth={depth}", "model.base_channels=4", f"model.temporal_kernel={temporal_kernel}",
        "model.precision=float32"])["model"])
    head = model.get_layer("head")
    kernel, bias = head.get_weights()
    head.set_weights([kernel * 8, bias + 0.5])
    return model


def make_clip(frames=10, height=20, width=28, seed=0):
    packed = np.random.default_rng(seed).random((frames, height, width, 4)).astype(np.float32)
    return data.Clip("clip", packed, None, None, lambda x: np.asarray(x, np.float32))


def tiling_cfg(**changes):
    """test settings for the tiler's own tests: without test.steady, unless asked, which changes frames after it."""
    changes = {"steady": False, **changes}
    return config.load_config(overrides=[f"test.{k}={v}" for k, v in changes.items()])["test"]


def run(enhancer, clip):
    chunks = list(enhancer.enhance(clip))
    starts = [start for start, _ in chunks]
    assert starts == sorted(starts) and starts[0] == 0
    for (start, rgb), (following, _) in zip(chunks, chunks[1:]):
        assert start + len(rgb) == following  # each frame exactly once, in order
    return np.concatenate([rgb for _, rgb in chunks])


def test_tile_plan_uses_the_fewest_equal_tiles():
    assert inference.tile_plan(10, 16, 4) == (10, [0])
    assert inference.tile_plan(200, 64, 8) == (56, [0, 48, 96, 144])  # 224 frames of work, not 256
    assert inference.tile_plan(100, 32, 8) == (31, [0, 23, 46, 69])
    assert inference.tile_plan(200, 72, 8) == (72, [0, 64, 128])  # the default on SMOID's 200 frames
    for length, tile, overlap in [(100, 32, 8), (33, 32, 0), (2000, 64, 8), (7, 4, 3), (310, 512, 32)]:
        size, starts = inference.tile_plan(length, tile, overlap)
        assert size <= tile and starts[0] == 0 and starts[-1] + size == length
        assert all(size - (b - a) >= overlap for a, b in zip(starts, starts[1:]))
        fewer = len(starts) - 1  # one tile fewer could not cover the length with that overlap
        assert fewer == 0 or fewer * tile - (fewer - 1) * overlap < length
    ramp = inference.ramp(10, 3)
    assert ramp.min() > 0 and np.allclose(ramp, ramp[::-1]) and ramp[3:7].tolist() == [1, 1, 1, 1]


def test_tile_plan_rounds_tiles_up_to_sizes_the_unet_pools_evenly():
    """Where the length is a multiple of 16, so is the tile (more overlap, never less), and never
    larger than asked: tiles of at most 20 are counted at 16."""
    assert inference.tile_plan(624, 512, 32, 16) == (336, [0, 288])  # 328 rounded up
    assert inference.tile_plan(620, 512, 32, 16) == (326, [0, 294])  # not a multiple: as without
    assert inference.tile_plan(32, 20, 12, 16) == (16, [0, 4, 8, 12, 16])
    for length, tile, overlap in [(624, 512, 32), (2000, 72, 8), (64, 40, 8), (48, 20, 4), (96, 17, 16)]:
        size, starts = inference.tile_plan(length, tile, overlap, 16)
        assert size <= max(tile, 16) and starts[0] == 0 and starts[-1] + size == length
        assert all(size - (b - a) >= overlap for a, b in zip(starts, starts[1:]))
        assert size % 16 == 0 or tile // 16 * 16 <= overlap, (length, tile, overlap, size)


def test_one_tile_equals_the_untiled_model():
    model, clip = textured_model(), make_clip(frames=6, height=12, width=20)
    tiled = run(inference.TiledEnhancer(model, tiling_cfg(tile_frames=8, tile_size=32, overlap_frames=0, overlap_size=0, mirror_frames=0)),
                clip)
    untiled = to_uint8(model(clip.packed_raw[None]).numpy()[0])
    assert tiled.shape == (6, 24, 40, 3) and np.abs(tiled.astype(int) - untiled).max() <= 1


def test_a_size_that_does_not_pool_evenly_is_mirrored_up_to_one_that_does():
    """13 x 21 packed pixels under a depth-2 U-Net: the clip's mosaic is mirrored at its bottom and
    right to 16 x 24 packed pixels (numpy's reflect keeps the CFA phase), and the output cropped."""
    model, clip = textured_model(), make_clip(frames=6, height=13, width=21)
    tiled = run(inference.TiledEnhancer(model, tiling_cfg(tile_frames=8, tile_size=32, overlap_frames=0, overlap_size=0, mirror_frames=0)),
                clip)
    mosaic = np.pad(data.mosaic_from_packed(clip.packed_raw), ((0, 0), (0, 6), (0, 6)), mode="reflect")
    padded = to_uint8(model(data.packed_from_mosaic(mosaic)[None]).numpy()[0])[:, :26, :42]
    assert tiled.shape == (6, 26, 42, 3) and np.abs(tiled.astype(int) - padded).max() <= 1


def test_time_windows_blend_exactly():
    """With a per-frame model every window computes the same frames, so any blend of them must
    give the untiled output: this checks the streaming and the temporal weights."""
    model, clip = textured_model(temporal_kernel=1), make_clip(frames=14)
    untiled = to_uint8(model(clip.packed_raw[None]).numpy()[0]).astype(int)
    for tile, overlap in [(5, 2), (4, 3), (6, 0), (13, 4)]:
        tiled = run(inference.TiledEnhancer(model, tiling_cfg(tile_frames=tile, overlap_frames=overlap, tile_size=64)),
                    clip)
        assert np.abs(tiled.astype(int) - untiled).max() <= 1, (tile, overlap)


def test_clip_ends_are_mirrored_then_dropped():
    """Re-derived by hand: 3 mirrored frames at each end of a 6-frame clip are 3 2 1 | 0 .. 5 | 4 3 2,
    enhanced in one window, and the clip's own 6 frames kept. A 1-frame clip has nothing to mirror."""
    model, clip = textured_model(), make_clip(frames=6, height=8, width=12)
    mirrored = clip.packed_raw[[3, 2, 1, 0, 1, 2, 3, 4, 5, 4, 3, 2]]
    expected = to_uint8(model(mirrored[None]).numpy()[0][3:9]).astype(int)
    cfg = tiling_cfg(tile_frames=16, overlap_frames=2, tile_size=64, overlap_size=0, mirror_frames=3)
    assert np.abs(run(inference.TiledEnhancer(model, cfg), clip).astype(int) - expected).max() <= 1
    windowed = tiling_cfg(tile_frames=5, overlap_frames=2, tile_size=64, overlap_size=0, mirror_frames=3)
    assert run(inference.TiledEnhancer(model, windowed), clip).shape == (6, 16, 24, 3)  # windows over the ends
    one = make_clip(frames=1, height=8, width=12)
    assert run(inference.TiledEnhancer(model, cfg), one).shape == (1, 16, 24, 3)
    np.testing.assert_array_equal(data.read_mirrored(np.arange(4), -3, 7), [3, 2, 1, 0, 1, 2, 3, 2, 1, 0])


def test_spatial_tiles_stay_close_and_show_no_seam():
    """Tiles of at most 20x20 packed pixels overlapping by 12, over 24x40: the stated bound is a mean
    difference under 5/255 from the untiled model (an untrained, high-gain model whose receptive
    field is wider than the overlap), and no jump across a tile border beyond the model's own."""
    model, clip = textured_model(temporal_kernel=1), make_clip(frames=3, height=24, width=40)
    untiled = to_uint8(model(clip.packed_raw[None]).numpy()[0]).astype(int)
    tiled = run(inference.TiledEnhancer(model, tiling_cfg(tile_size=20, overlap_size=12)), clip).astype(int)
    assert tiled.shape == untiled.shape
    assert np.abs(tiled - untiled).mean() < 5.0
    size, lefts = inference.tile_plan(40, 20, 12)
    for left in lefts[1:]:
        for col in (2 * left, 2 * (left + size)):  # where a tile begins, and where the one before ends
            if col < untiled.shape[2]:
                tiled_jump = np.abs(tiled[:, :, col] - tiled[:, :, col - 1]).mean()
                untiled_jump = np.abs(untiled[:, :, col] - untiled[:, :, col - 1]).mean()
                assert tiled_jump < untiled_jump + 3.0, (col, tiled_jump, untiled_jump)


def test_psnr_and_ssim_match_scikit_image():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (3, 40, 48, 3), dtype=np.uint8)
    out = np.clip(gt + rng.normal(0, 12, gt.shape), 0, 255).astype(np.uint8)
    expected_psnr = [peak_signal_noise_ratio(g, o, data_range=255) for g, o in zip(gt, out)]
    expected_ssim = [structural_similarity(g, o, data_range=255, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                           use_sample_covariance=False) for g, o in zip(gt, out)]
    np.testing.assert_allclose(metrics.psnr(gt, out), expected_psnr, atol=1e-3)
    np.testing.assert_allclose(metrics.ssim(gt, out), expected_ssim, atol=1e-3)


def test_saved_levels_round_to_nearest_and_saturate_as_validation_scores_them():
    rng = np.random.default_rng(0)
    rgb = rng.normal(0.5, 0.4, (2, 6, 10, 3)).astype(np.float32)  # a quarter of it outside [0, 1]
    rgb[0, 0, 0] = [1.5 / 255, 2.5 / 255, 0.5]  # ties: 1.5 -> 2 and 2.5 -> 2 (to even), 127.5 -> 128
    expected = np.round(np.clip(rgb * np.float32(255), 0, 255))
    np.testing.assert_array_equal(to_uint8(rgb), expected.astype(np.uint8))
    np.testing.assert_array_equal(metrics.to_levels(rgb), expected)


def test_mabd_by_hand():
    # Three 12x12 grey frames. Brightness of (R, G, B) = (v, v, v) is v / 255.
    grey = np.array([0, 51, 102], np.uint8)[:, None, None, None] * np.ones((1, 12, 12, 3), np.uint8)
    frames = grey.copy()
    frames[2, :, 6:] = 51  # the right half of the last frame stays as it was
    assert np.allclose(metrics.mabd(metrics.brightness(grey)), [0.2, 0.2])
    assert np.allclose(metrics.mabd(metrics.brightness(frames)), [0.2, (0.2 + 0.0) / 2])
    mse = ((0.2 - 0.2) ** 2 + (0.2 - 0.1) ** 2) / 2 / 1e-3
    scores = metrics.VideoScores()
    scores.update(grey[:2], grey[:2])  # streamed in two chunks: the difference across chunks counts
    scores.update(grey[2:], frames[2:])
    assert scores.result()["mse_mabd"] == pytest.approx(mse) == pytest.approx(5.0)
    assert metrics.psnr(grey, grey)[0] == pytest.approx(10 * np.log10(255**2 / 1e-10))


def test_motion_tells_smoothing_from_flicker():
    # The truth brightens by 50 levels a frame; one output by 25 (smoothed over time), one by 75
    # and back (flicker). Both miss the truth's MABD by 25 levels a step, so MSE(MABD) is the same.
    levels = {"truth": [0, 50, 100], "smoothed": [0, 25, 50], "flicker": [0, 75, 0]}
    frames = {k: np.array(v, np.uint8)[:, None, None, None] * np.ones((1, 12, 12, 3), np.uint8) for k, v in levels.items()}
    results = {}
    for name in ("smoothed", "flicker"):
        scores = metrics.VideoScores()
        scores.update(frames["truth"][:1], frames[name][:1])  # two chunks: the step across them counts
        scores.update(frames["truth"][1:], frames[name][1:])
        results[name] = scores.result()
    assert results["smoothed"]["mse_mabd"] == pytest.approx(results["flicker"]["mse_mabd"]) == pytest.approx(
        (25 / 255) ** 2 / 1e-3)
    assert results["smoothed"]["motion"] == pytest.approx(0.5) and results["flicker"]["motion"] == pytest.approx(1.5)
    still = metrics.VideoScores()
    still.update(frames["truth"][:2] * 0, frames["smoothed"][:2])
    assert np.isnan(still.result()["motion"])  # a still truth: no motion to compare with


def test_colour_measures_by_hand():
    gt = np.zeros((2, 12, 12, 3), np.uint8)
    gt[...] = (20, 60, 200)  # a blue scene
    grey = np.full_like(gt, 93)  # the same brightness, no colour
    scores = metrics.VideoScores()
    scores.update(gt, grey)
    result = scores.result()
    assert (result["cast_r"], result["cast_g"], result["cast_b"]) == pytest.approx((73, 33, -107))
    expected = np.linalg.norm(np.array([93, 93, 93]) / 279 - np.array([20, 60, 200]) / 280)
    assert result["chroma_error"] == pytest.approx(expected) and result["chroma_error"] > 0.4
    scores = metrics.VideoScores()
    scores.update(gt, (gt * 0.5).astype(np.uint8))  # darker but the same colour: no chromaticity error
    assert scores.result()["chroma_error"] < 0.01 and scores.result()["cast_b"] == pytest.approx(-100)


def test_angular_error_by_hand():
    """Hand-computed: grey (1, 1, 1) against red-free (0, 1, 1) is 35.26 degrees (arccos(2 / sqrt(6))),
    whatever the brightness; only the ground truth's brighter half of pixels counts; area averaging
    first (ANGLE_SCALE) lets a pixel's noise cancel."""
    gt = np.ones((8, 8, 3), np.float32)
    gt[:, 4:] *= 0.1  # the dark half: left out
    out = np.zeros_like(gt)
    out[:, :4] = [0.0, 2.0, 2.0]
    out[:, 4:] = [5.0, 0.0, 0.0]  # wrong in the dark half only
    angles = metrics.angular_errors(gt, out)
    np.testing.assert_allclose(angles, np.degrees(np.arccos(2 / np.sqrt(6))), rtol=1e-6)
    assert len(angles) == 2  # 8x8 downscaled 4 times: 2x2 cells, the bright half of them
    checker = np.ones((8, 8, 3), np.float32)
    checker[::2, ::2] = [1.5, 0.5, 1.0]
    checker[1::2, 1::2] = [0.5, 1.5, 1.0]  # each 4x4 cell's mean is grey
    np.testing.assert_allclose(metrics.angular_errors(np.ones((8, 8, 3), np.float32), checker), 0, atol=1e-3)
    scores = metrics.VideoScores()
    scores.update(np.full((1, 16, 16, 3), 200, np.uint8), np.full((1, 16, 16, 3), [0, 200, 200], np.uint8))
    assert scores.result()["angle_median"] == pytest.approx(35.26, abs=0.01)


def test_flicker_by_hand_counts_only_where_the_scene_stands_still():
    """Hand-computed: the ground truth's left half is still, its right half brightens by 10 levels a
    frame; the output's grey rises 2 levels a frame everywhere. Flicker sees the left half only: 2."""
    gt = np.full((3, 8, 8, 3), 100, np.uint8)
    gt[:, :, 4:] += np.arange(3, dtype=np.uint8)[:, None, None, None] * 10
    out = (gt.astype(int) + np.arange(3)[:, None, None, None] * 2).astype(np.uint8)
    total, count = metrics.static_flicker(gt[0], gt[1], out[0], out[1])
    assert count == 32 and total / count == pytest.approx(2.0, abs=1e-3)


def test_flicker_and_warping_error_tell_noise_from_motion():
    """A still textured scene with fresh noise in every output frame scores as flicker; a clean pan
    of the same texture does not, and its warping error is the flow's own (the ground truth
    against itself), far below a pan with the same noise."""
    rng = np.random.default_rng(0)
    texture = (np.kron(rng.random((40, 56, 3)), np.ones((4, 4, 1))) * 200 + 20).astype(np.uint8)
    texture = cv2.GaussianBlur(texture, (5, 5), 1.0)
    still = np.repeat(texture[None, 16:-16, 16:-16], 6, axis=0)
    noise = lambda frames: np.clip(frames + rng.normal(0, 6, frames.shape), 0, 255).astype(np.uint8)  # noqa: E731

    def score(gt, out):
        s = metrics.VideoScores()
        s.update(gt, out)
        return s.result()
    noisy_still, clean_still = score(still, noise(still)), score(still, still)
    assert clean_still["flicker"] == 0 and noisy_still["flicker"] > 4
    pan = np.stack([texture[16:-16, 16 + 2 * k:texture.shape[1] - 16 + 2 * k] for k in range(-3, 3)])
    clean_pan, noisy_pan = score(pan, pan), score(pan, noise(pan))
    assert clean_pan["warp_error"] < 1.5 and noisy_pan["warp_error"] > 3 * clean_pan["warp_error"]
    assert np.isnan(score(still[:1], still[:1])["flicker"])  # a photo has no frame-to-frame change


def test_mp4_round_trips(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (7, 32, 48, 3), dtype=np.uint8)
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, fps=12.5) as writer:
        writer.write(frames[:3])
        writer.write(frames[3:])
    decoded, fps = read_video(path)
    assert decoded.shape == frames.shape and fps == 12.5
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    reader.close()
    assert meta["codec"] == "h264" and "yuv420p" in meta["pix_fmt"]


def test_frames_are_counted_without_decoding_and_a_cut_file_counts_none(tmp_path):
    path = tmp_path / "clip.mp4"
    write_video(path, np.random.default_rng(0).integers(0, 256, (7, 32, 48, 3), dtype=np.uint8), 25)
    assert video_io.count_frames(path) == len(read_video(path)[0]) == 7
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])  # as a full disk leaves it
    assert video_io.count_frames(path) == 0


def test_failed_write_leaves_no_video(tmp_path):
    with pytest.raises(RuntimeError):
        with VideoWriter(tmp_path / "broken.mp4", 25) as writer:
            writer.write(np.zeros((2, 16, 16, 3), np.uint8))
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OSError, match="empty.mp4: no frames were given"):
        with VideoWriter(tmp_path / "empty.mp4", 25):
            pass
    assert list(tmp_path.iterdir()) == []
    write_video(tmp_path / "ok.mp4", np.zeros((2, 16, 16, 3), np.uint8), 25)
    assert [p.name for p in tmp_path.iterdir()] == ["ok.mp4"]


def ffmpeg_writing(path):
    """The process id of the ffmpeg that writes `path` (Linux: read from /proc)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if str(path).encode() in cmdline.read_bytes():
                return int(cmdline.parent.name)
    raise AssertionError(f"no ffmpeg writes {path}")


def test_a_folder_that_cannot_be_written_stops_before_any_frame(tmp_path):
    (tmp_path / "a_file").write_text("")
    with pytest.raises(OSError, match=r"a_file/out.mp4: cannot write there \(Not a directory\)"):
        VideoWriter(tmp_path / "a_file" / "out.mp4", 25).__enter__()
    assert [p.name for p in tmp_path.iterdir()] == ["a_file"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="finds ffmpeg's process in /proc (Linux)")
def test_ffmpeg_stopping_mid_clip_is_one_line_and_leaves_nothing(tmp_path):
    """ffmpeg gone mid-stream (killed, or its disk full): one line, not imageio's broken pipe."""
    with pytest.raises(OSError, match="out.mp4: ffmpeg stopped after 2 frames"):
        with VideoWriter(tmp_path / "out.mp4", 25) as writer:
            writer.write(np.zeros((2, 16, 16, 3), np.uint8))
            ffmpeg = ffmpeg_writing(writer._tmp)
            os.kill(ffmpeg, signal.SIGKILL)
            os.waitpid(ffmpeg, 0)
            writer.write(np.zeros((2, 256, 256, 3), np.uint8))  # larger than the pipe's buffer: written at once
    assert list(tmp_path.iterdir()) == []


def test_demosaic_keeps_flat_colours():
    rgb = np.broadcast_to(np.array([0.2, 0.5, 0.8], np.float32), (1, 8, 8, 3))
    packed = data.packed_from_mosaic(synthesis.mosaic(rgb))
    np.testing.assert_allclose(baselines.demosaic(packed)[0, 4, 4], [0.2, 0.5, 0.8], atol=1e-4)


def test_linear_baseline_without_noise_gives_back_the_ground_truth():
    """The baseline's tone curve is the one synthesis inverted: with no noise and a smooth scene,
    only demosaicking and 12-bit rounding separate it from the ground truth."""
    y, x = np.mgrid[0:32, 0:48] / 48.0
    gt_rgb = (np.stack([0.2 + 0.6 * x, 0.3 + 0.4 * y, 0.7 - 0.5 * x * y], -1)[None] * 255).astype(np.uint8)
    synth = {**config.DEFAULTS["synthesis"], "ratio_range": [1, 1], "read_noise_range": [0, 0],
             "row_noise_range": [0, 0], "shot_gain_range": [1e-4, 1e-4], "brightness_std": 0, "brightness_mean": 1}
    rng = np.random.default_rng(0)
    params = synthesis.draw_camera_params(rng, synth)
    packed_raw = synthesis.synthesize(gt_rgb, params, rng)
    meta = synthesis.sidecar(params, 25.0, "test")
    normalize = data.make_normalizer(packed_raw, meta, config.DEFAULTS["data"], "clip")
    linear = baselines.render("linear", normalize, packed_raw)
    inner = (slice(None), slice(2, -2), slice(2, -2))  # demosaicking guesses at the borders
    assert metrics.psnr(gt_rgb[inner], linear[inner])[0] > 40
    values = np.arange(256, dtype=np.uint8)
    np.testing.assert_allclose(synthesis.linear_to_srgb(synthesis.srgb_to_linear(values)) * 255, values, atol=0.02)


def test_background_stage_keeps_order_bounds_its_lead_and_raises_errors():
    made = []

    def items():
        for i in range(6):
            made.append(i)
            yield i

    stage = inference.in_background(items(), ahead=1)
    assert next(stage) == 0
    import time
    time.sleep(0.3)
    assert len(made) <= 3  # one handed over, one waiting in the queue, one being put: never the whole clip
    assert list(stage) == [1, 2, 3, 4, 5]

    def broken():
        yield 1
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(inference.in_background(broken()))


def test_a_stopped_consumer_stops_every_stage_before_it_returns():
    """Stopped early (an error, Ctrl-C, a kill), a chain of stages must have closed every generator
    and ended every thread by the time it is closed: none may be left running inside TensorFlow."""
    import contextlib
    import threading
    closed = []

    def frames():
        try:
            yield from range(100)
        finally:
            closed.append("frames")

    def finished(source):  # a stage fed by another, as TiledEnhancer chains them
        with contextlib.closing(source):
            yield from source
        closed.append("never: it was stopped")

    before = threading.active_count()
    chain = inference.in_background(finished(inference.in_background(frames())))
    assert next(chain) == 0
    chain.close()
    assert closed == ["frames"] and threading.active_count() == before


def test_full_disk_fails_loudly_and_keeps_the_good_file(tmp_path):
    """A file-size limit makes ffmpeg's writes fail as a full disk does: the writer must say so and
    leave the earlier good video where it was, with no temporary file behind."""
    import subprocess
    import sys
    from pathlib import Path
    keep = tmp_path / "keep.mp4"
    write_video(keep, np.zeros((4, 32, 48, 3), np.uint8), 25)
    good = keep.read_bytes()
    script = (f"import resource, signal, sys, numpy as np; sys.path.insert(0, {str(Path(__file__).parents[1])!r});"
              "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096));"
              "from video_io import write_video;"
              f"write_video({str(keep)!r}, np.random.default_rng(0).integers(0, 256, (30, 64, 96, 3), dtype=np.uint8), 25)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode != 0 and "is the disk full?" in done.stderr, done.stderr[-2000:]
    assert keep.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["keep.mp4"]


def test_time_windows_of_a_3d_model_blend_with_the_ramp():
    """Re-derived by hand: each window enhanced alone, weighted by the ramp across the overlap,
    summed and normalised. With a 3D model the windows disagree where they overlap, so a wrong
    weight (e.g. all ones) shows."""
    model = textured_model(temporal_kernel=3)
    clip = make_clip(frames=14, height=8, width=12)
    cfg = tiling_cfg(tile_frames=8, overlap_frames=4, tile_size=64, overlap_size=0, mirror_frames=0)
    tile, starts = inference.tile_plan(14, 8, 4)
    total = np.zeros((14, 16, 24, 3))
    weights = np.zeros((14, 1, 1, 1))
    for start in starts:
        rgb = model(clip.packed_raw[None, start:start + tile]).numpy()[0]
        ramp = inference.ramp(tile, 4)[:, None, None, None]
        total[start:start + tile] += rgb * ramp
        weights[start:start + tile] += ramp
    expected = to_uint8(total / weights).astype(int)
    tiled = run(inference.TiledEnhancer(model, cfg), clip).astype(int)
    assert np.abs(tiled - expected).max() <= 1
    alone = to_uint8(model(clip.packed_raw[None, :tile]).numpy()[0]).astype(int)
    assert np.abs(alone[starts[1]:tile] - expected[starts[1]:tile]).max() > 1  # the overlap is really blended


def test_a_single_frame_is_scored_without_mabd():
    frame = np.full((1, 12, 12, 3), 100, np.uint8)
    scores = metrics.VideoScores()
    scores.update(frame, frame)
    result = scores.result()
    assert result["frames"] == 1 and np.isnan(result["mse_mabd"]) and np.isnan(result["motion"])
    assert result["chroma_error"] == 0


@pytest.mark.parametrize("steady", [False, True])
def test_tile_by_tile_through_the_clip_gives_what_whole_frames_give(steady):
    """Past test.memory_gib a clip is enhanced tile by tile, each through every window of the clip,
    its input and output in temporary files: through mirrored ends, windows, tiles cut at the
    frame's edge, the anchor and test.steady (on disk, in bands), it must give what the
    window-by-window path gives with tiles of the same size (up to a level of rounding)."""
    rng = np.random.default_rng(1)
    linear = (rng.random((11, 22, 38, 4)) * 0.6).astype(np.float32)
    identity = lambda x: np.asarray(x, np.float32)  # noqa: E731 - the packed frames are their own linear light
    clip = data.Clip("clip", linear, None, None, identity, identity, identity)
    model = textured_model()
    cfg = tiling_cfg(tile_frames=6, overlap_frames=2, tile_size=64, overlap_size=4, mirror_frames=3, memory_gib=1e-6,
                     steady=steady)
    by_tiles, size = inference.memory_plan(11, 22, 38, cfg, network.size_multiple(model), "float32")
    assert by_tiles and size == 8  # shrunk to the least above the overlap that the U-Net pools evenly
    tiled = run(inference.TiledEnhancer(model, cfg), clip).astype(int)
    whole = run(inference.TiledEnhancer(model, {**cfg, "tile_size": size, "memory_gib": 64.0}), clip).astype(int)
    assert tiled.shape == whole.shape == (11, 44, 76, 3)
    assert np.abs(tiled - whole).max() <= 1 and (tiled != whole).mean() < 0.01


def test_memory_plan_keeps_small_frames_whole_and_tiles_a_24_megapixel_burst():
    """By the estimates: a 1080p burst of 16 frames fits 6 GiB window by window; 32 frames of 24
    megapixels do not, and go tile by tile, with tiles small enough for one tile's work to fit."""
    cfg = tiling_cfg()
    assert inference.memory_plan(16, 540, 960, cfg, 8, "bfloat16") == (False, 512)
    by_tiles, size = inference.memory_plan(32, 2000, 3000, cfg, 8, "bfloat16")
    window = 32 + 2 * cfg["mirror_frames"]
    assert by_tiles and 128 <= size < 512
    (tile_h, _), (tile_w, _) = (inference.tile_plan(n, size, cfg["overlap_size"], 8) for n in (2000, 3000))
    assert inference.CALL_BYTES + window * tile_h * tile_w * (550 + 3 * 48) <= cfg["memory_gib"] * inference.GIB


def test_steady_averages_noise_on_a_still_picture_by_hand():
    """Re-derived by hand: a still grey frame whose middle frame is 6 levels brighter everywhere
    (noise-like: a change between 4 and 14 levels lets in 0.2 + 0.8 x 0.2 = 0.36 of it; below 4, 0.2).
    Forward averages 100, 102.16, 101.73; backward 101.73, 102.16, 100; their means round to
    101, 102, 101: a 6-level flicker becomes 1."""
    frames = np.full((3, 12, 12, 3), 100, np.uint8)
    frames[1] += 6
    out = np.concatenate([chunk for _, chunk in inference.steady([(0, frames)])])
    np.testing.assert_array_equal(out[:, 6, 6, 0], [101, 102, 101])


def test_steady_keeps_motion_and_streams_each_frame_once_in_order():
    """A clean pan of a high-contrast pattern (every change far above noise) comes out as it went in;
    noise on a still picture comes out with at most half its frame-to-frame change; how the clip
    arrives in chunks changes nothing."""
    pattern = np.tile(np.repeat(np.uint8([20, 220]), 8), 8)  # stripes 8 pixels wide
    pan = np.stack([np.broadcast_to(np.roll(pattern, 4 * t)[None, :, None], (16, 128, 3)) for t in range(20)])
    out = np.concatenate([chunk for _, chunk in inference.steady([(0, pan)])])
    assert out.shape == pan.shape and np.abs(out.astype(int) - pan).max() <= 1
    rng = np.random.default_rng(0)
    still = np.clip(120 + rng.normal(0, 3, (20, 32, 32, 3)), 0, 255).astype(np.uint8)
    chunks = [list(inference.steady([(first, still[first:first + size]) for first in range(0, 20, size)]))
              for size in (1, 7, 20)]
    for steadied in chunks:
        assert [first for first, _ in steadied] == list(range(0, 20, 4))[:len(steadied)]
        np.testing.assert_array_equal(np.concatenate([c for _, c in steadied]), np.concatenate([c for _, c in chunks[0]]))
    out = np.concatenate([c for _, c in chunks[0]]).astype(int)
    assert np.abs(np.diff(out, axis=0)).mean() < 0.5 * np.abs(np.diff(still.astype(int), axis=0)).mean()


def test_steady_in_bands_of_a_file_stays_within_a_level_of_steady_over_whole_frames():
    """Frames enhanced tile by tile are steadied on disk, a few rows at a time: bands of 3 rows with
    their margins must give what whole frames in memory give, to a level (float sums in another order)."""
    rng = np.random.default_rng(2)
    clip = np.clip(120 + rng.normal(0, 4, (12, 95, 17, 3)), 0, 255).astype(np.uint8)
    clip[6:, 20:60] = 230  # a change like motion, crossing band borders
    whole = np.concatenate([chunk for _, chunk in inference.steady([(0, clip)])]).astype(int)
    frames = inference.DiskFrames(clip.shape, np.uint8)
    frames.write(0, clip)
    inference.steady_in_bands(frames, band_bytes=3 * inference.steady_row_bytes(12, 17))  # 3 rows
    banded = frames.read(0, 12).astype(int)
    assert np.abs(banded - whole).max() <= 1 and (banded != whole).mean() < 0.02  # float rounding: a level


def packed_light(rgb):
    """(..., H, W, 3) linear RGB, constant over each 2x2 block -> the (..., H/2, W/2, 4) packed linear
    light of such a frame."""
    blocks = rgb[..., ::2, ::2, :]
    return np.stack([blocks[..., "RGB".index(letter)] for letter in config.CFA], axis=-1).astype(np.float32)


def test_anchor_keeps_a_small_objects_colour_where_a_saturated_light_leaves_a_channel_below_zero():
    """Under saturated blue light the colour-corrected input's R and G are below zero around a small
    orange object that holds them (their frame means: -0.0, -0.01). The network's output is greyer
    than the input (R and G too high in the blue). The anchor must keep the object orange, as its
    input is, and take the blue's R and G down to what the input has there; a gain per channel for
    the whole frame scaled the object's green away (frame mean below zero: gain 0)."""
    height, width, box = 128, 256, (slice(32, 96), slice(64, 128))
    light = np.broadcast_to(np.float32([-0.03, -0.03, 0.5]), (1, height, width, 3)).copy()
    light[0][box] = [0.3, 0.1, 0.03]
    output = np.broadcast_to(np.float32([0.05, 0.05, 0.45]), (1, height, width, 3)).copy()
    output[0][box] = [0.25, 0.09, 0.03]
    anchored = synthesis.LEVEL_TO_LINEAR[inference.anchor_colour(to_uint8(synthesis.linear_to_srgb(output)), packed_light(light))][0]
    inner = anchored[40:88, 72:120].reshape(-1, 3).mean(axis=0)  # the object, away from its edges
    angle = metrics.angular_errors(np.float32([[[0.3, 0.1, 0.03]]]), inner[None, None])
    assert angle[0] < 2.0 and inner[1] > 0.08
    blue = anchored[:, 160:].reshape(-1, 3).mean(axis=0)  # away from the object
    assert blue[0] < 0.01 and blue[1] < 0.01 and abs(blue[2] - 0.5) < 0.03


def test_anchor_colour_pins_each_frames_linear_means_to_the_input_but_not_on_a_lamp():
    """Hand-computed: a flat output of linear light (0.1, 0.3, 0.2) whose input means are
    (0.2, 0.3, 0.1), then twice as bright in frame 1, comes out as exactly those; a white lamp
    (the input 50x above white) is left out of the means instead of pulling them up."""
    rgb = np.broadcast_to(synthesis.linear_to_srgb(np.array([0.1, 0.3, 0.2])), (2, 4, 8, 3)).astype(np.float32)
    rgb[:, :, 6:] = 1.0
    linear = np.zeros((2, 2, 4, 4), np.float32)
    for colour, value in zip("RGB", [0.2, 0.3, 0.1]):
        linear[..., data.channel_index(colour)] = value
    linear[1] *= 2
    linear[:, :, 3] = 50.0
    anchored = inference.anchor_colour(to_uint8(rgb), linear).astype(int)
    for frame, light in enumerate([[0.2, 0.3, 0.1], [0.4, 0.6, 0.2]]):
        expected = np.broadcast_to(synthesis.linear_to_srgb(np.array(light)) * 255, (4, 6, 3))
        np.testing.assert_allclose(anchored[frame, :, :6], expected, atol=1.0)  # rounded to uint8 levels twice
    dark = np.zeros((1, 2, 2, 3), np.float32)  # no light: nothing to anchor, and no division by zero
    np.testing.assert_array_equal(inference.anchor_colour(to_uint8(dark), np.full((1, 1, 1, 4), 0.5, np.float32)), 0)


def test_reader_gives_the_normalised_input_and_its_linear_light():
    """The window reader computes the linear light once and caps it for the network: what it hands
    the network must be clip.normalize's input (capped at 1, signed below black), mirrored."""
    rng = np.random.default_rng(0)
    packed_raw = rng.integers(200, 4096, (5, 4, 8, 4)).astype(np.uint16)  # below black and far above white
    meta = {"black_level": 256, "white_level": 4095, "cfa": config.CFA, "ratio": 20.0, "wb_gains": [2.0, 1.0, 1.5]}
    clip = data.make_clip("clip", packed_raw, None, meta, {**config.DEFAULTS["data"], "apply_ccm": False}, "clip")
    mirrored = data.read_mirrored(packed_raw, -2, 4)
    for anchor in (True, False):
        enhancer = inference.TiledEnhancer(textured_model(), tiling_cfg(anchor_colour=anchor))
        network_input, linear, window_shape = next(enhancer._read(clip, -2, 4, [views.View(False, 0)]))  # the window's own view
        assert window_shape == mirrored.shape
        np.testing.assert_array_equal(network_input, clip.normalize(mirrored))
        assert network_input.max() == 1.0 and network_input.min() < 0
        if anchor:
            np.testing.assert_array_equal(linear, clip.linear(mirrored))
            assert linear.max() > 1
        else:
            assert linear is None


def test_tiled_enhancement_anchors_every_frame_to_its_own_input():
    """Through windows and mirrored ends: each output frame's linear means (re-derived from the
    saved uint8 frames) equal its own input frame's, which differ frame by frame."""
    rng = np.random.default_rng(0)
    linear = (rng.random((11, 8, 12, 4)) * 0.6 * np.linspace(0.3, 1.0, 11)[:, None, None, None]).astype(np.float32)
    identity = lambda x: np.asarray(x, np.float32)  # noqa: E731 - the packed frames are their own linear light
    clip = data.Clip("clip", linear, None, None, identity, identity, identity)
    cfg = tiling_cfg(tile_frames=6, overlap_frames=2, tile_size=64, overlap_size=0, mirror_frames=3)
    out = synthesis.srgb_to_linear(run(inference.TiledEnhancer(textured_model(), cfg), clip))
    blocks = out.reshape(11, 8, 2, 12, 2, 3).mean(axis=(2, 4))
    keep = blocks.max(axis=-1, keepdims=True) < inference.NEAR_WHITE
    assert keep.mean() > 0.5
    inputs = np.stack([linear[..., data.channel_index(c)].mean(axis=-1) for c in "RGB"], axis=-1)
    np.testing.assert_allclose((blocks * keep).sum(axis=(1, 2)), (inputs * keep).sum(axis=(1, 2)), rtol=0.02)
    plain = run(inference.TiledEnhancer(textured_model(), {**cfg, "anchor_colour": False}), clip)
    assert np.abs(synthesis.srgb_to_linear(plain).mean(axis=(1, 2)) - inputs.mean(axis=(1, 2))).max() > 0.05
