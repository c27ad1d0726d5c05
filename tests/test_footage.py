"""footage.py and the scene part of synthesis.py: broad sources, manifest, lights, layered motion."""
import json
import zipfile

import numpy as np
import pytest
import skimage.data

import config
import footage
import generate_file_list
import motion
import synthesis

SYNTH = config.DEFAULTS["synthesis"]


def test_scene_draws_are_reproducible_per_clip_and_sometimes_coloured():
    draw = lambda name: synthesis.draw_scene_params(synthesis.clip_rng(0, name, "scene"), SYNTH)  # noqa: E731
    assert draw("clip_a") == draw("clip_a")
    scenes = [draw(f"clip_{i}") for i in range(400)]
    coloured = [s for s in scenes if s.lights != [[1.0, 1.0, 1.0]]]
    share = len(coloured) / len(scenes)
    assert abs(share - SYNTH["illuminant_probability"]) < 0.07, share
    assert any(len(s.lights) == 2 for s in coloured)
    assert all(max(light) == pytest.approx(1.0) for s in coloured for light in s.lights)  # dims, never clips


def test_coloured_light_stays_in_the_ground_truth():
    grey = np.full((2, 16, 16, 3), 128, np.uint8)
    scene = synthesis.SceneParams(0.0, 1.0, [synthesis.ILLUMINANTS["blue_stage"]], 0.0)
    lit = synthesis.light_scene(grey, scene)
    expected = synthesis.linear_to_srgb(synthesis.srgb_to_linear(np.uint8(128)) * np.array(scene.lights[0]))
    np.testing.assert_allclose(lit[0, 0, 0] / 255, expected, atol=1 / 255)
    assert lit[..., 2].mean() > 120 > 60 > lit[..., 0].mean()
    neutral = synthesis.SceneParams(0.0, 1.0, [[1.0, 1.0, 1.0]], 0.0)
    assert synthesis.light_scene(grey, neutral) is grey


def test_two_lights_blend_across_the_frame():
    scene = synthesis.SceneParams(0.0, 1.0, [[1.0, 0.2, 0.2], [0.2, 0.2, 1.0]], 0.0)  # red left, blue right
    lights = synthesis.light_map(scene, 8, 64)
    np.testing.assert_allclose(lights[4, 0], [1.0, 0.2, 0.2])
    np.testing.assert_allclose(lights[4, -1], [0.2, 0.2, 1.0])


def test_narrow_and_pooled_lights_are_drawn_after_and_apart_from_the_others():
    saturated = {**SYNTH, "illuminant_probability": 1.0, "mixed_light_probability": 0.5,
                 "narrow_light_probability": 1.0, "spot_light_probability": 1.0}
    for i in range(40):
        name = f"clip_{i}"
        plain = synthesis.draw_scene_params(synthesis.clip_rng(0, name, "scene"), {**saturated, "narrow_light_probability": 0.0,
                                                                                   "spot_light_probability": 0.0})
        scene = synthesis.draw_scene_params(synthesis.clip_rng(0, name, "scene"), saturated)
        # every draw of the plain scene is kept...
        assert (scene.hue_shift, scene.light_direction, scene.lights[1:]) == (plain.hue_shift, plain.light_direction, plain.lights[1:])
        # ...but the first light is a narrow one, as strong as the plain one was
        assert strength(plain.lights[0], synthesis.ILLUMINANTS) == pytest.approx(strength(scene.lights[0], synthesis.NARROW_ILLUMINANTS))
        assert (scene.spot is not None) == (len(scene.lights) == 2)
    # ...and so are the draws before the narrow and pooled lights existed (clip_0-2, from commit 409bd24):
    # data synthesised before stays as it was
    before = [(0.0, 1.13251, 1), (0.0, 6.249563, 2), (-32.497073, 0.834719, 2)]
    for i, (hue_shift, direction, count) in enumerate(before):
        scene = synthesis.draw_scene_params(synthesis.clip_rng(0, f"clip_{i}", "scene"), saturated)
        assert (scene.hue_shift, scene.light_direction, len(scene.lights)) == pytest.approx((hue_shift, direction, count), abs=1e-6)


def strength(light, palette):
    """The strength s at which tint(colour, s) gives `light`, for the one colour of `palette` that does."""
    found = set()
    for colour in palette.values():
        dim = np.array(colour) < 1
        ratios = (1 - np.array(light)[dim]) / (1 - np.array(colour)[dim])
        if np.ptp(ratios) < 1e-9:
            found.add(round(float(ratios[0]), 9))
    assert len(found) == 1, (light, found)
    return found.pop()


def test_second_light_in_a_pool():
    scene = synthesis.SceneParams(0.0, 1.0, [[0.0, 0.04, 1.0], [1.0, 1.0, 1.0]], 0.0, spot=[0.25, 0.5, 0.1])
    lights = synthesis.light_map(scene, 32, 64)  # the pool: centred at x 16, y 16, radius 6.4 pixels
    np.testing.assert_allclose(lights[16, 16], [1.0, 1.0, 1.0])  # white in the pool
    np.testing.assert_allclose(lights[19, 19], [1.0, 1.0, 1.0])  # 4.2 px: 0.66 of the radius, still white
    np.testing.assert_allclose(lights[16, 23], [0.0, 0.04, 1.0])  # blue from its radius on (7 px)...
    np.testing.assert_allclose(lights[0, 60], [0.0, 0.04, 1.0])  # ...and everywhere else
    assert 0.1 < lights[16, 21, 0] < 0.99  # a soft edge between (5 px: 0.78 of the radius)


def test_layered_still_moves_in_layers_with_occlusion():
    rng = np.random.default_rng(0)
    background = skimage.data.astronaut()
    overlay = np.zeros((200, 200, 3), np.uint8)
    overlay[...] = (0, 255, 0)  # pure green: nothing in the background is
    clip = motion.layered_clip(background, [overlay], 12, 48, 64, rng)
    assert clip.shape == (12, 48, 64, 3) and clip.dtype == np.uint8
    green = (clip[..., 1] > 200) & (clip[..., 0] < 60) & (clip[..., 2] < 60)
    covered = green.reshape(12, -1).mean(axis=1)
    assert (covered > 0.02).sum() >= 6  # the patch is seen in most frames, hiding the background
    centres = [np.argwhere(g).mean(axis=0) for g in green if g.sum() > 20]
    assert np.linalg.norm(centres[-1] - centres[0]) > 5  # and it moves on a path of its own
    assert np.abs(np.diff(clip.astype(int), axis=0)).mean() > 1  # the background moves too


def fake_wheel(folder, name, version, members):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for member, payload in members.items():
            wheel.writestr(member, payload)
    return path


def test_manifest_records_every_file_and_a_missing_package_is_skipped(tmp_path, monkeypatch, capsys):
    import cv2
    photo = cv2.imencode(".png", skimage.data.coffee()[:, :, ::-1])[1].tobytes()
    cache = tmp_path / "downloads"
    fake_wheel(cache, "photo-pack", "1.0", {"photos/coffee.png": photo})
    packages = [footage.Package("pip", "photo-pack", "1.0", "CC0", {"photos/coffee.png": "photo"}),
                footage.Package("pip", "no-such-package-here", "9.9", "none", {"x.png": "photo"})]
    monkeypatch.setattr(footage, "PACKAGES", packages)
    monkeypatch.setattr(footage.subprocess, "run", lambda *a, **k: type("R", (), {"returncode": 1, "stderr":
                        "ERROR: No matching distribution found for no-such-package-here==9.9"})())
    synth = {**SYNTH, "frames": 3, "height": 16, "width": 24}
    sources, manifest = footage.broad_sources(cache, synth)
    out = capsys.readouterr().out
    assert "skipped pip package no-such-package-here==9.9: ERROR: No matching distribution" in out
    assert [name for name, _, _ in sources] == ["coffee"]
    assert manifest == [{"file": "photos/coffee.png", "manager": "pip", "package": "photo-pack", "version": "1.0",
                         "licence": "CC0", "sha256": manifest[0]["sha256"], "clips": ["coffee"]}]
    assert len(manifest[0]["sha256"]) == 64
    clip, fps = sources[0][2](synth)
    assert clip.shape == (3, 16, 24, 3) and fps == synthesis.STILL_FPS
    footage.write_manifest(manifest, tmp_path / "manifest.json")
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest


def test_videos_are_cut_into_whole_clips_spread_over_their_length():
    assert footage.video_starts(190, 48) == [0, 71, 142]
    assert footage.video_starts(48, 48) == [0]
    assert footage.video_starts(47, 48) == []


def test_clips_of_one_source_land_in_one_list(tmp_path):
    names = [f"video{v}_{start:03d}" for v in range(6) for start in (0, 48, 96)] + ["photoA", "photoB"]
    data_cfg = {**config.DEFAULTS["data"], "lists_dir": str(tmp_path), "held_out": []}
    generate_file_list.write_lists(sorted(names), data_cfg)
    lists = {n: [line.split()[0] for line in (tmp_path / n).read_text().splitlines()] for n in generate_file_list.LIST_NAMES}
    assert sorted(sum(lists.values(), [])) == sorted(names)
    source = lambda name: name.split("_")[0]  # noqa: E731 (video3_048 -> video3)
    for one, other in [("file_list", "test_list"), ("file_list", "valid_list"), ("valid_list", "test_list")]:
        assert not {source(n) for n in lists[one]} & {source(n) for n in lists[other]}
