"""The model shipped in models/shipped/: it loads, and on a small clip made from bundled footage
it beats both classical baselines. A real, fast check that cloning gives a working enhancer."""
import numpy as np
import skimage.data

import baselines
import config
import data
import synthesis
import test as enhance
from inference import TiledEnhancer
from metrics import psnr


def test_shipped_model_beats_the_classical_baselines():
    assert enhance.SHIPPED.is_file(), "models/shipped/best.weights.h5 is part of the project"
    saved = enhance.saved_config(enhance.SHIPPED)
    cfg = config.load_config(base={"model": saved["model"], "data": saved["data"]})
    model = enhance.load_generator(cfg, enhance.SHIPPED)

    synth = {**cfg["synthesis"], "frames": 8, "height": 96, "width": 128, "ratio_range": [100, 100]}
    gt_rgb, fps = synthesis.still_clip(skimage.data.chelsea(), "shipped_check", synth)
    rng = synthesis.clip_rng(1, "shipped_check")
    params = synthesis.draw_camera_params(rng, synth)
    packed_raw = synthesis.synthesize(gt_rgb, params, rng)
    meta = synthesis.sidecar(params, fps, "test")
    clip = data.Clip("check", packed_raw, gt_rgb, meta, data.make_normalizer(packed_raw, meta, cfg["data"], "check"))

    output = np.concatenate([rgb for _, rgb in TiledEnhancer(model, cfg["test"]).enhance(clip)])
    network_psnr = psnr(gt_rgb, output).mean()
    for name, normalize in baselines.baseline_normalizers(clip, cfg["data"]).items():
        baseline_psnr = psnr(gt_rgb, baselines.enhance(name, normalize, packed_raw)).mean()
        assert network_psnr > baseline_psnr + 3, (name, network_psnr, baseline_psnr)
