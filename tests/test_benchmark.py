"""benchmark.py --quick: the whole benchmark runs on tiny sizes and writes well-formed JSON.
It asserts no timings: speed targets live in the benchmark's output, not in tests."""
import json
import math

import benchmark


def test_quick_benchmark_writes_well_formed_json(tmp_path):
    benchmark.main(["--quick", "--runs", "1", "--json", str(tmp_path / "bench.json")])
    results = json.loads((tmp_path / "bench.json").read_text())
    assert results["size"] == "quick" and results["cores"] >= 1 and results["tensorflow"]
    for key in list(benchmark.TARGETS) + ["matmul_f32_gflops", "matmul_bf16_gflops", "inference_f32_fps",
                                          "training_step_gflop", "inference_long_peak_memory_gib"]:
        assert isinstance(results[key], float) and math.isfinite(results[key]) and results[key] > 0, key
    report = benchmark.report(results)
    assert "training_compute_f32_ratio" in report


def test_report_judges_each_figure_against_its_target():
    lines = benchmark.report({"training_end_to_end_ratio": 1.2, "training_compute_f32_ratio": 0.95,
                              "matmul_f32_gflops": 300.0}).splitlines()[1:]
    verdicts = {line.split()[0]: line.split()[-1] for line in lines}
    assert verdicts == {"training_end_to_end_ratio": "NO", "training_compute_f32_ratio": "yes",
                        "matmul_f32_gflops": "300.000"}  # no target: no verdict
