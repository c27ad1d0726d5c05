"""config.py: every value that would fail later is named before any work starts."""
import errno

import pytest

import cli
import config


@pytest.mark.parametrize("override, message", [
    ("data.held_out=bikes", "data.held_out must be a list of clip-name prefixes"),
    ("data.ratio=-3", "data.ratio must be a positive number"),
    ("train.learning_rate=-0.001", "train.learning_rate must be a number >= 0"),
    ("train.lr_drop_factor=-1", "train.lr_drop_factor must be a number >= 0"),
    ("test.fps=-25", "test.fps must be a number from 1 to 1000"),
    ("test.fps=1e9", "test.fps must be a number from 1 to 1000"),
    ("loss.terms={l1: -1}", "loss.terms.l1 must be a number >= 0"),
    ("model.resnet=maybe", "model.resnet must be true or false"),
    ("seed=abc", "seed must be an integer"),
    # YAML's true / yes are booleans, which Python would count as the integer 1
    ("test.mirror_frames=yes", "test.mirror_frames must be an integer >= 0, got True"),
    ("train.crop_frames=true", "train.crop_frames must be an integer >= 1, got True"),
    ("train.crop_size=5", "train.crop_size must be at least 6: validation scores SSIM with an 11-pixel window"),
    ("test.tile_frames=abc", "test.tile_frames must be an integer >= 1, got 'abc'"),
    ("test.overlap_size=null", "test.overlap_size must be an integer >= 0, got None"),
    ("synthesis.height=abc", "synthesis.height must be an integer >= 2"),
    ("model.base_channels=0", "model.base_channels must be an integer >= 1"),
    ("model.temporal_kernel=2", "model.temporal_kernel must be odd"),
    ("train.steps_per_epoch=0", "train.steps_per_epoch must be an integer >= 1 or null"),
    ("data.split_fraction=abc", r"data.split_fraction must be in \(0, 0.5\)"),
    # Issue 40 row 12: these were tracebacks.
    ("model.depth=[", r"override 'model.depth=\[': not valid YAML \(line 1, column 2"),
    ("test.result_root=", "test.result_root must name a folder, got None"),
    ("train.checkpoint_root=null", "train.checkpoint_root must name a folder, got None"),
    ("data.ratio=sometimes", "data.ratio must be a positive number, auto or null"),
    # Written into the space-separated lists, it would make lists that no script can read.
    ("data.gt_dir=my data/gt", "data.gt_dir 'my data/gt': the file lists are space-separated"),
    ("train.still_probability=yes", r"train.still_probability must be in \[0, 1\], got True"),
    ("train.end_probability=1.5", r"train.end_probability must be in \[0, 1\], got 1.5"),
    ("train.end_probability=0.95", r"train.still_probability \+ train.end_probability .* must be at most 1, got 0.1 \+ 0.95"),
    ("synthesis.brightness_mean=abc", "synthesis.brightness_mean must be a number >= 0"),
    ("synthesis.ratio_range=5", r"synthesis.ratio_range must be \[low, high\]"),
    ("synthesis.ratio_range=[a, b]", r"synthesis.ratio_range must be \[low, high\]"),
    ("synthesis.ratio_range=[1, 2, 3]", r"synthesis.ratio_range must be \[low, high\]"),
    ("experiment=../../x", "experiment must be a plain folder name"),
    ("model.precision=fp8", "model.precision must be one of"),
    ("train.clip_norm=-1", "train.clip_norm must be a positive number or null"),
    ("train.warmup_steps=-5", "train.warmup_steps must be an integer >= 0"),
    ("train.warmup_steps=2.5", "train.warmup_steps must be an integer >= 0"),
    ("train.ema_momentum=1", "train.ema_momentum must be a number between 0 and 1"),
    ("model.time_padding=reflect", "model.time_padding must be one of"),
    ("synthesis.illuminant_probability=2", r"synthesis.illuminant_probability must be in \[0, 1\]"),
])
def test_bad_values_are_named(override, message):
    with pytest.raises(ValueError, match=message):
        config.load_config(overrides=[override])


def test_exponents_without_a_dot_are_numbers():
    assert config.load_config(overrides=["data.ratio=1e-5"])["data"]["ratio"] == pytest.approx(1e-5)
    assert config.load_config(overrides=["data.ratio=200"])["data"]["ratio"] == 200


def test_a_full_disk_is_one_line_wherever_it_is_raised_and_a_bug_keeps_its_traceback(run_script, capsys):
    def write(error):  # stands for a library's own write (numpy, h5py, pathlib): raised outside the project
        raise error

    with pytest.raises(SystemExit) as exited:
        run_script(lambda: write(OSError(errno.ENOSPC, "No space left on device", "best.weights.h5")))
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == ["error: [Errno 28] No space left on device: 'best.weights.h5'"]
    with pytest.raises(FileNotFoundError):
        run_script(lambda: write(FileNotFoundError(errno.ENOENT, "No such file or directory", "x")))


def test_a_yaml_file_with_a_key_given_twice_or_broken_syntax_is_one_line(tmp_path):
    """PyYAML keeps the last of two equal keys without a word: the first setting silently did not count."""
    twice = tmp_path / "twice.yaml"
    twice.write_text("train:\n  epochs: 3\n  epochs: 4\n")
    with pytest.raises(ValueError, match=r"twice.yaml: not valid YAML \(line 3, column 3: the key 'epochs' is given twice\)"):
        config.load_config(twice)
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [\n")
    with pytest.raises(ValueError, match=r"broken.yaml: not valid YAML \(line 2"):
        config.load_config(broken)
    with pytest.raises(FileNotFoundError, match="missing.yaml: no such configuration file"):
        config.load_config(tmp_path / "missing.yaml")


def test_ctrl_c_is_one_line_and_exit_status_130(capsys):
    def interrupted():
        raise KeyboardInterrupt
    with pytest.raises(SystemExit) as stop:
        cli.run_script(interrupted)
    assert stop.value.code == 130
    assert capsys.readouterr().err.startswith("stopped (Ctrl-C): files already complete are kept")


@pytest.mark.parametrize("dotted, default", [(d, v) for d, v in config.default_leaves() if v is not None])
def test_every_setting_refuses_a_value_of_another_type_than_its_default(dotted, default):
    """Issue 42: types come from the defaults, not from hand-kept lists (loss.ms_ssim, a boolean,
    was missing from the hand-kept boolean check). A value of another type, as YAML reads it from
    --set, stops with a message naming the setting."""
    wrong = {bool: "maybe", int: "abc", float: "abc", str: "5", list: "5", dict: "5"}[type(default)]
    with pytest.raises((ValueError, KeyError), match=dotted.split(".")[-1]):
        config.load_config(overrides=[f"{dotted}={wrong}"])


@pytest.mark.parametrize("level, quiet", [("2", True), ("0", False)])
def test_tensorflow_loads_without_its_start_up_lines_unless_asked(level, quiet):
    """Imported after config, TensorFlow prints nothing on stderr as it loads and runs a first op
    (its oneDNN notice comes before it reads TF_CPP_MIN_LOG_LEVEL); TF_CPP_MIN_LOG_LEVEL=0 shows it."""
    import os
    import subprocess
    import sys
    code = "import config, tensorflow as tf; tf.constant([1.0]) * 2"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": level})
    assert (done.stderr == "") == quiet, done.stderr[-500:]
