"""lab/benchmark.py --quick: the whole benchmark runs on tiny sizes and writes well-formed JSON.
It asserts no timings: speed targets live in the benchmark's output, not in tests."""
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from lab import benchmark
from lab import benchmark_enhance
import config
from lab import figures
import network

ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmark_writes_well_formed_json(tmp_path):
    benchmark.main(["--quick", "--runs", "1", "--json", str(tmp_path / "bench.json")])
    results = json.loads((tmp_path / "bench.json").read_text())
    assert results["size"] == "quick" and results["cores"] >= 1 and results["tensorflow"]
    without_torch = [key for key in benchmark.TARGETS if not key.startswith("torch")]  # --compare-torch only
    for key in without_torch + ["matmul_f32_gflops", "matmul_bf16_gflops", "inference_f32_fps",
                                "training_step_gflop", "training_compute_zero_time_padding_ratio",
                                "inference_long_peak_memory_gib",
                                "inference_long_same_window_peak_memory_gib",
                                "training_conv_backward_weights_gflops", "training_conv_ratio"]:  # oneDNN's own timings
        assert isinstance(results[key], float) and math.isfinite(results[key]) and results[key] > 0, key
    report = benchmark.report(results)
    assert "training_compute_f32_ratio" in report


def test_quick_enhancement_benchmark_writes_a_row_for_each_precision(tmp_path):
    """lab/benchmark_enhance.py --quick (issue 43's command at a tiny size): every figure of each row
    is a finite positive number (no timing is asserted)."""
    benchmark_enhance.main(["--quick", "--runs", "1", "--json", str(tmp_path / "enhance.json")])
    results = json.loads((tmp_path / "enhance.json").read_text())
    assert results["backend"] == "tensorflow" and [row["precision"] for row in results["rows"]] == ["float32", "mixed_bfloat16"]
    for row in results["rows"]:
        for key in ("fps", "model_fps", "ratio", "peak_resident_gib"):
            assert math.isfinite(row[key]) and row[key] > 0, key
        assert row["network_calls"] >= 1 and row["accelerator_peak_gib"] is None  # no GPU here


def test_the_model_alone_is_timed_on_the_calls_the_tiling_makes():
    test_cfg = config.load_config()["test"]  # windows of at most 72 frames over 8, tiles of 512 over 32
    # 200 frames + 8 mirrored at each end = 216: 4 windows of 60; 170 x 310, mirrored up to multiples
    # of 16 (176 x 320), fits one tile.
    assert benchmark.network_calls(200, 170, 310, test_cfg, 16) == (4, (60, 176, 320))
    assert benchmark.network_calls(200, 170, 310, test_cfg, 1) == (4, (60, 170, 310))
    # 620 wide, mirrored to 624: 2 tiles of 328 (624 + 32 = 2 x 328) rounded up to 336; 1 frame (a
    # photo): no mirror, one window of 1, in test.photo_self_ensemble's 8 views by default (a frame
    # reversed in time is itself, so 8 is all it has); 16 views of 3 frames: 16 times the calls (7
    # frames with 2 mirrored at each end).
    assert benchmark.network_calls(1, 170, 620, test_cfg, 16) == (16, (1, 176, 336))
    assert benchmark.network_calls(1, 170, 620, {**test_cfg, "photo_self_ensemble": 1}, 16) == (2, (1, 176, 336))
    assert benchmark.network_calls(1, 170, 620, {**test_cfg, "photo_self_ensemble": 16}, 16) == (16, (1, 176, 336))
    assert benchmark.network_calls(3, 170, 620, test_cfg, 16) == (2, (7, 176, 336))
    assert benchmark.network_calls(3, 170, 620, {**test_cfg, "self_ensemble": 16}, 16) == (32, (7, 176, 336))


def test_onednn_convolutions_are_read_from_its_verbose_lines():
    """oneDNN's exec records (its verbose format in TensorFlow 2.21), a 3D and a 2D convolution;
    other primitives and creation records do not count."""
    fields = "src:bf16::blocked:acdeb::f0 wei:bf16:a:blocked:ABcde16b16a::f0,,alg:convolution_direct"
    lines = [
        f"onednn_verbose,v1,primitive,exec,cpu,convolution,jit_bf16:avx512_core_bf16,backward_weights,{fields},"
        "mb1_ic32oc32_id18od16kd3sd1dd0pd0_ih130oh128kh3sh1dh0ph0_iw130ow128kw3sw1dw0pw0,66.5",
        f"onednn_verbose,v1,primitive,create:cache_miss,cpu,convolution,jit_bf16:avx512_core_bf16,backward_weights,{fields},"
        "mb1_ic32oc32_id18od16kd3sd1dd0pd0_ih130oh128kh3sh1dh0ph0_iw130ow128kw3sw1dw0pw0,0.1",
        f"onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx512_core_bf16,forward_training,{fields},"
        "mb16_ic64oc64_ih64oh64kh3sh1dh0ph1_iw64ow64kw3sw1dw0pw1,10",
        "onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src:bf16::blocked:cdeba::f0,,,32x32x3x3x3,0.08",
    ]
    totals = benchmark.onednn_convolutions(lines * 2, steps=2)
    assert totals.keys() == {"backward_weights", "forward_training"}
    # 2 x batch x in x out channels x output voxels x kernel taps
    assert totals["backward_weights"] == pytest.approx((0.0665, 2 * 32 * 32 * 16 * 128 * 128 * 27 / 1e9))
    assert totals["forward_training"] == pytest.approx((0.010, 2 * 16 * 64 * 64 * 64 * 64 * 9 / 1e9))


def test_report_judges_each_figure_against_its_target():
    lines = benchmark.report({"training_end_to_end_ratio": 1.2, "training_compute_f32_ratio": 0.95,
                              "matmul_f32_gflops": 300.0}).splitlines()[1:]
    verdicts = {line.split()[0]: line.split()[-1] for line in lines}
    assert verdicts == {"training_end_to_end_ratio": "NO", "training_compute_f32_ratio": "yes",
                        "matmul_f32_gflops": "300.000"}  # no target: no verdict


def test_torch_unet_is_the_same_network():
    """--compare-torch times a PyTorch copy of the U-Net: with the Keras model's weights copied in,
    it must give the Keras model's output (odd sizes, so cropping counts). Skipped without PyTorch."""
    torch = pytest.importorskip("torch")
    model_cfg = config.load_config(overrides=["model.depth=2", "model.base_channels=4", "model.precision=float32"])["model"]
    keras_unet, torch_unet = network.build_unet(model_cfg), benchmark.torch_unet(model_cfg)
    for layer in keras_unet.layers:
        if not layer.get_weights():
            continue
        kernel, *bias = layer.get_weights()
        # Conv3D (t, h, w, in, out) -> (out, in, t, h, w); Conv3DTranspose (t, h, w, out, in) -> (in, out, t, h, w)
        kernel = kernel.transpose(4, 3, 0, 1, 2)
        if layer.name == "head":  # Keras' depth-to-space reads channel (dy * 2 + dx) * 3 + c, PyTorch's c * 4 + dy * 2 + dx
            order = [(k % 4) * 3 + k // 4 for k in range(12)]
            kernel, bias = kernel[order], [bias[0][order]]
        name, _, which = layer.name.partition("_conv")
        module = {"head": torch_unet.head}.get(layer.name) or (
            torch_unet.up[int(name[2:])] if name.startswith("up") else
            (torch_unet.down if name.startswith("down") else torch_unet.dec)[int(name[-1])][int(which) - 1])
        module.weight.data = torch.from_numpy(np.ascontiguousarray(kernel))
        if bias:
            module.bias.data = torch.from_numpy(bias[0])
    packed = np.random.default_rng(0).random((1, 3, 9, 11, 4)).astype(np.float32)
    expected = keras_unet(packed).numpy()[0]  # (T, H, W, 3)
    with torch.no_grad():
        got = torch_unet(torch.from_numpy(packed).permute(0, 4, 1, 2, 3)).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_memory_is_compared_at_equal_windows():
    """Hand-computed plans: 200 frames + 2 x 8 mirrored = 216 in 4 windows of 60; 2,016 in 32 of
    71 (the peak follows the window); at test.tile_frames=60 the 2,016 frames get windows of 60."""
    assert benchmark.window_frames("full", 200) == 60
    assert benchmark.window_frames("full", 2000) == 71
    test_cfg = benchmark.bench_config("full", "test.tile_frames=60")["test"]
    assert benchmark.time_plan(2000, test_cfg)[1] == 60  # 2,016 frames with the mirrored ends


def test_each_documented_benchmark_table_is_its_json_file():
    # A table's key is the name of the JSON file its run wrote (benchmark.main), so the documents
    # show exactly what figure/ holds, and a run written anywhere else touches no document.
    documents = "".join(path.read_text() for path in figures.project_documents())
    tables = dict(re.findall(r"<!-- table:(benchmark\w*) -->\n(.*?)<!-- /table:\1 -->", documents, re.S))
    files = {path.stem: path for path in (ROOT / "figure").glob("benchmark*.json")}
    assert sorted(tables) == sorted(files)
    values = re.compile(r"^\| (\w+) \| ([\d.]+) \|", re.M)  # each figure's row and value
    for key, table in tables.items():
        # The machine line and the values; a target may have moved since a table was written.
        written = benchmark.report_markdown(json.loads(files[key].read_text()))
        assert table.splitlines()[0] == written.splitlines()[0], key
        assert values.findall(table) == values.findall(written), key
