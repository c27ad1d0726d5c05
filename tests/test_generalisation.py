"""lab/generalisation.py's own construction: the static burst that tells missing exposures from motion."""
import dataclasses

import numpy as np

import config
import data
from lab import generalisation
import synthesis


def test_static_burst_is_fresh_noise_around_the_frames_exposure():
    """A flat grey scene: every exposure's packed channel means are the hand-computed DN of that CFA
    colour, and no two exposures share their noise."""
    params = synthesis.CameraParams(
        ratio=2.0, shot_gain=0.5, read_noise=1.0, row_noise=0.0, red_gain=2.0, blue_gain=1.7, brightness=0.8,
        rgb_to_cam=np.eye(3).tolist(), black_level=256, white_level=4095)
    gt_rgb = np.zeros((3, 32, 48, 3), np.uint8)
    gt_rgb[1] = 128  # the burst's frame; the others must not leak in
    clip = data.Clip("grey", None, gt_rgb, {"simulation": dataclasses.asdict(params)}, None)

    burst = generalisation.static_burst(clip, 1, 4)

    assert burst.shape == (4, 16, 24, 4)
    linear = float(synthesis.srgb_to_linear(np.uint8(128)))
    gains = {"R": 1 / 2.0, "G": 1.0, "B": 1 / 1.7}
    expected = [256 + linear * gains[c] * 0.8 / 2.0 * (4095 - 256) for c in "GBRG"]
    np.testing.assert_allclose(burst.reshape(4, -1, 4).mean(axis=1), np.tile(expected, (4, 1)), rtol=0.01)
    assert all(not np.array_equal(burst[0], burst[f]) for f in (1, 2, 3))


def test_a_noise_left_out_leaves_every_other_draw_the_same():
    """noise_table's premise: synthesised with row_noise_range [0, 0], a clip is the same clip but for
    one offset per raw row and frame, rounded (so within 1 DN across the row), the row noise the
    full clip drew; every other camera draw is unchanged."""
    synth_cfg = {**config.load_config()["synthesis"], "row_noise_range": [0.5, 0.5]}
    scene = np.random.default_rng(0).integers(0, 256, (3, 32, 48, 3), dtype=np.uint8)

    def film(changes):
        rng = synthesis.clip_rng(0, "clip")
        params = synthesis.draw_camera_params(rng, {**synth_cfg, **changes})
        return params, synthesis.synthesize(scene, params, rng)

    params, full = film({})
    quiet_params, quiet = film(generalisation.noise_changes(synth_cfg)["without row noise"][1])

    assert quiet_params.row_noise == 0.0 and dataclasses.replace(quiet_params, row_noise=0.5) == params
    shift = data.mosaic_from_packed(full.astype(np.int32) - quiet.astype(np.int32))  # (F, H, W) DN
    assert (shift.max(axis=2) - shift.min(axis=2)).max() <= 1
    assert 0.3 < shift.mean(axis=2).std() < 0.7
