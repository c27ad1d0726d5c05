import os
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the flat scripts are the modules
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow start-up chatter

import cli  # noqa: E402
import config  # noqa: E402


@pytest.fixture
def tiny_cfg(tmp_path):
    """A configuration whose data folders live in the test's own temporary folder."""
    return config.load_config(overrides=[
        f"data.input_dir={tmp_path / 'train_he'}",
        f"data.gt_dir={tmp_path / 'gt_he'}",
        f"data.lists_dir={tmp_path}",
        "synthesis.frames=4",
        "synthesis.height=32",
        "synthesis.width=48",
    ])


@pytest.fixture
def run_script():
    """cli.run_script, with this process's signal handlers put back after the test."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield cli.run_script
    for s, handler in handlers.items():
        signal.signal(s, handler)
