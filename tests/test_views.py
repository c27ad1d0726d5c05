"""views.py and test.self_ensemble: every view of a raw window reads the CFA where the network
learnt it, turns back onto the window exactly, and averaging views keeps what a view-blind
network gives."""
import numpy as np
import pytest

import config
import data
import inference
import network
import views
from test_inference import make_clip, run, textured_model, tiling_cfg


def colour_mosaic(frames, height, width):
    """A raw window whose every pixel holds the code of its CFA colour (R 1, G 2, B 3) plus 10 x its
    frame, row and column, so a value says both where it came from and which colour it is."""
    letters = np.array([[config.CFA[0], config.CFA[1]], [config.CFA[2], config.CFA[3]]])
    colour = np.vectorize("RGB".index)(np.tile(letters, (height // 2, width // 2))) + 1
    t, r, c = np.meshgrid(np.arange(frames), np.arange(height), np.arange(width), indexing="ij")
    return (colour + 10 * (c + 100 * (r + 100 * t))).astype(np.int64)


def test_there_are_sixteen_distinct_views_the_window_first():
    every = views.views(config.MAX_VIEWS, frames=2)
    assert len(set(every)) == config.MAX_VIEWS == 16 and every[0] == views.View(False, 0)
    assert views.views(2, frames=2) == [views.View(False, 0), views.View(True, 0)]
    flips = [view for view in every if not view.reverse_time]  # reversed, one frame is itself
    assert views.views(16, frames=1) == flips and len(flips) == 8
    assert views.views(4, frames=1) == flips[:4]  # 4 views of a photo are 4 passes, as of a video


@pytest.mark.parametrize("view", views.views(16, frames=3))
def test_every_view_reads_the_cfa_and_turns_back_onto_the_window(view):
    """Hand-checkable: each packed channel of a view holds only its CFA colour; each of the view's
    pixels is a pixel of the window (or a mirrored one at a border); and a network that passes each
    raw pixel through, turned back, gives the window's mosaic exactly, frame for frame."""
    # packed 6 x 10 (a multiple of neither 4 nor 8), and 1 x 2 mirrored many times over up to 16 x 16
    for height, width, multiple in ((12, 20, 4), (2, 4, 16)):
        mosaic = colour_mosaic(3, height, width)
        packed_raw = data.packed_from_mosaic(mosaic)
        shown = views.show(packed_raw, view, multiple)
        assert shown.shape[1] % multiple == 0 and shown.shape[2] % multiple == 0 and shown.shape[0] == 3
        for k, letter in enumerate(config.CFA):
            assert np.all(shown[..., k] % 10 == "RGB".index(letter) + 1), (view, k)
        assert set(np.unique(shown)) <= set(np.unique(mosaic))
        passed_through = data.mosaic_from_packed(shown)[..., None].repeat(3, axis=-1)  # (T, 2h', 2w', 3)
        restored = views.restore(passed_through, view, packed_raw.shape)
        np.testing.assert_array_equal(restored, mosaic[..., None].repeat(3, axis=-1))


def test_a_view_flips_the_scene_itself():
    """The anti-transposed view (no cut needed) is the window's mosaic mirrored about its
    anti-diagonal: pixel (r, c) of the view is pixel (W-1-c, H-1-r) of the window."""
    mosaic = colour_mosaic(1, 8, 8)
    shown = data.mosaic_from_packed(views.show(data.packed_from_mosaic(mosaic), views.View(False, 7), multiple=1))
    np.testing.assert_array_equal(shown[0], mosaic[0][::-1, ::-1].T)
    reversed_time = views.show(data.packed_from_mosaic(colour_mosaic(3, 8, 8)), views.View(True, 0), multiple=1)
    np.testing.assert_array_equal(reversed_time, data.packed_from_mosaic(colour_mosaic(3, 8, 8))[::-1])


def test_the_window_itself_is_not_copied_when_its_size_pools_evenly():
    packed_raw = np.zeros((2, 8, 12, 4), np.uint16)
    assert views.show(packed_raw, views.View(False, 0), multiple=4) is packed_raw
    assert views.show(packed_raw, views.View(False, 0), multiple=8).shape == (2, 8, 16, 4)


def pixelwise_model():
    """A network that renders each raw pixel on its own, by its colour only (both greens alike):
    blind to flips, transposes and time, and to where the 2x2 blocks are cut."""
    import keras

    packed = keras.Input((None, None, None, 4))
    head = keras.layers.Conv3D(12, 1)
    rgb = network.DepthToSpace()(head(packed))
    gains = {"R": [0.9, 0.2, 0.1], "G": [0.3, 0.8, 0.2], "B": [0.1, 0.3, 1.1]}
    kernel = np.zeros((1, 1, 1, 4, 12), np.float32)
    for k, letter in enumerate(config.CFA):  # packed channel k renders output sub-pixel k
        kernel[0, 0, 0, k, 3 * k:3 * k + 3] = gains[letter]
    head.set_weights([kernel, np.full(12, 0.05, np.float32)])
    return keras.Model(packed, rgb)


def test_self_ensemble_of_a_view_blind_network_is_the_network():
    """A network that renders every pixel on its own gives the same frames with 16 views as with
    one, through tiles, windows and mirrored ends: each view is put back where it belongs. An
    untrained 3x3x3 U-Net sees the views differently: for it they must differ."""
    clip = make_clip(frames=9, height=12, width=20)
    cfg = tiling_cfg(tile_frames=6, overlap_frames=2, tile_size=8, overlap_size=2, mirror_frames=2)
    pixelwise = pixelwise_model()
    one = run(inference.TiledEnhancer(pixelwise, cfg), clip).astype(int)
    sixteen = run(inference.TiledEnhancer(pixelwise, {**cfg, "self_ensemble": 16}), clip).astype(int)
    assert np.abs(one - sixteen).max() <= 1
    textured = textured_model()
    assert np.abs(run(inference.TiledEnhancer(textured, cfg), clip).astype(int)
                  - run(inference.TiledEnhancer(textured, {**cfg, "self_ensemble": 16}), clip).astype(int)).max() > 8


def test_self_ensemble_must_be_a_view_count():
    for key in ("self_ensemble", "photo_self_ensemble"):
        for bad in (0, 17, 2.5, "all"):
            with pytest.raises(ValueError, match=f"test.{key} must be an integer (>= 1|from 1 to 16), got '?{bad}"):
                config.load_config(overrides=[f"test.{key}={bad}"])


def test_a_photo_is_enhanced_in_photo_self_ensemble_views():
    """A 1-frame clip gets test.photo_self_ensemble views (by default 8, all it has: reversed, one
    frame is itself), whatever test.self_ensemble says; a longer clip gets test.self_ensemble's."""
    def passes(frames, **changes):
        enhancer = inference.TiledEnhancer(textured_model(), tiling_cfg(**changes))
        windows = []
        enhance_window = enhancer.enhance_window
        enhancer.enhance_window = lambda packed: windows.append(packed.shape) or enhance_window(packed)
        assert run(enhancer, make_clip(frames=frames, height=12, width=20)).shape == (frames, 24, 40, 3)
        return len(windows)

    assert passes(1) == 8 and passes(3) == 1
    assert passes(1, self_ensemble=16, photo_self_ensemble=3) == 3
    assert passes(3, self_ensemble=16, photo_self_ensemble=3) == 16
    assert passes(1, self_ensemble=16, photo_self_ensemble=16) == 8
