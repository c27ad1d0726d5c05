"""The single source of defaults: data layout, sensor facts, synthesis ranges.

Scripts read a configuration with `load_config(yaml_path, overrides)`: the defaults below, then a
YAML file (read safely, a key given twice refused), then `section.key=value` overrides from the command line.
Unknown keys are errors, so a typo never silently falls back to a default.
"""
import copy
import importlib.abc
import importlib.machinery
import math
import os
import re
import sys
from pathlib import Path

import yaml



class _QuietLoader(importlib.abc.Loader):
    """Runs another loader with the stderr file descriptor, where C++ libraries write, sent to
    /dev/null: TensorFlow prints a oneDNN notice as its library loads, before it reads
    TF_CPP_MIN_LOG_LEVEL, and absl a warning about logging before it is set up."""

    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):  # the rest (resources, source) is the loader's own
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        sys.stderr.flush()
        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        try:
            self.loader.exec_module(module)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(null)


class _QuietTensorFlow(importlib.abc.MetaPathFinder):
    """Whoever imports TensorFlow first, it loads through _QuietLoader."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


# TensorFlow's start-up lines are not the scripts' output: the variable hides the CPU feature
# guard's (set before TensorFlow loads, which every script imports after this module), the finder
# the lines it prints before reading it. Set TF_CPP_MIN_LOG_LEVEL=0 yourself to see them all.
if os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2") != "0" and "tensorflow" not in sys.modules:
    sys.meta_path.insert(0, _QuietTensorFlow())

# Linear sRGB (D65) -> CIE XYZ: the camera colour matrices of raw files and synthesis are relative to it.
SRGB_TO_XYZ = [[0.4124564, 0.3575761, 0.1804375],
               [0.2126729, 0.7151522, 0.0721750],
               [0.0193339, 0.1191920, 0.9503041]]

LUMA = (0.2126, 0.7152, 0.0722)  # BT.709 luminance of linear RGB: the MABD metric's brightness, the region loss's

# The colour filter array of the packed input, read row by row from the 2x2 Bayer block
# [[G, B], [R, G]]. Packed channel k holds raw pixel (k // 2, k % 2) of every block.
CFA = "GBRG"

# File suffixes of camera raw frames (DNG and the makers' formats that rawpy / LibRaw reads).
RAW_SUFFIXES = {".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf", ".rw2",
                ".pef", ".srw", ".x3f", ".3fr", ".iiq", ".erf", ".mef", ".mos", ".kdc", ".dcr", ".raw"}

# Views that test.self_ensemble can average (views.py): 2 time directions x 8 flips and transposes.
MAX_VIEWS = 16

DEFAULTS = {
    "preset": "demo",  # a named set of overrides (PRESETS below), applied before the YAML file
    "experiment": None,  # names the checkpoint and result folders; None takes the preset's name
    "seed": 236,  # training: initial weights, sample order, augmentation
    "data": {
        # The original SMOID layout: dark input in train_he/, ground truth in gt_he/, same names.
        # Synthetic inputs are stored raw (not equalised); `he` mode equalises them when read.
        "input_dir": "0_data/train_he",
        "gt_dir": "0_data/gt_he",
        "lists_dir": "0_data",
        "customized_dir": "0_data/customized",  # your own packed clips (no ground truth): test case 3
        # The broad set's fetched packages (about 600 MB, fetched once): shared by every dataset
        # built from them, e.g. one synthesised for your own camera in another lists_dir.
        "downloads_dir": "0_data/downloads",
        # `he`: the original's global histogram equalisation over the whole clip, then / 65535.
        # `linear`: (x - black) / (white - black) * ratio, then white balance (and colour matrix).
        "normalization": "linear",
        # Exposure ratio for `linear`; None takes it from the clip's sidecar (or, for a folder of camera
        # raw frames, which has none, chooses it as `auto` does); `auto` chooses one per clip from its
        # frames (data.auto_ratio), whatever the sidecar says.
        "ratio": None,
        "apply_ccm": True,  # `linear` only: camera RGB -> linear sRGB with the sidecar's matrix
        # `linear` only. false keeps the read noise below the black level as negative values (as raw
        # denoising work does): clipping it at 0 lifts the mean of dark pixels, most in R and B.
        # true clips at 0 as before. Values above 1 (saturated) are clipped either way.
        "clip_negative": False,
        "split_seed": 236,  # the original generate_file_list.py's np.random.seed
        "split_fraction": 0.15,  # of the videos for validation, and again for test
        # Clips whose names start with one of these are kept out of all three lists and go to
        # `heldout_list`: a whole source the model never sees, to measure generalisation honestly.
        "held_out": ["bikes"],
    },
    "synthesis": {
        "seed": 0,
        "frames": 48,  # per clip
        "height": 288,  # ground truth; the packed input is half of it on each side
        "width": 512,
        "ratio_range": [50, 300],  # exposure ratio, drawn log-uniformly per clip
        "black_level": 256,  # 12-bit sensor values, stored in a uint16 container
        "white_level": 4095,
        "shot_gain_range": [0.25, 1.5],  # DN per photo-electron (ISO gain), log-uniform
        "read_noise_range": [0.5, 2.0],  # DN, Gaussian, log-uniform
        "row_noise_range": [0.0, 0.5],  # DN, one Gaussian offset per raw row per frame
        "red_gain_range": [1.9, 2.4],  # as-shot white balance, Brooks et al. 2019
        "blue_gain_range": [1.5, 1.9],
        "brightness_mean": 0.8,  # overall gain 1 / N(mean, std) of the scene
        "brightness_std": 0.1,
        # A camera profile written by calibrate.py: gain, read and row noise, black and white level
        # are then drawn from the calibrated model instead of the ranges above.
        "camera": None,
        # The scene, before it is filmed (in the ground truth too): hue rotation and saturation...
        "colour_augment_probability": 0.5,
        "hue_range": 180.0,  # degrees, uniform in [-hue_range, hue_range]
        "saturation_range": [0.6, 1.4],
        # ...and coloured light (synthesis.ILLUMINANTS), sometimes two across the frame.
        "illuminant_probability": 0.3,
        "illuminant_strength_range": [0.5, 1.0],  # 0: white light, 1: the illuminant's full colour
        "mixed_light_probability": 0.3,  # of the coloured clips
        # Of the coloured clips, those whose (first) light is a narrow-band one (synthesis.NARROW_ILLUMINANTS:
        # LEDs, sodium), and of the clips with two lights, those with the second in a pool of the first.
        "narrow_light_probability": 0.0,
        "spot_light_probability": 0.0,
    },
    "model": {
        "depth": 3,  # poolings: channels base * 2**level, e.g. 32, 64, 128 and 256 at the bottom
        "base_channels": 32,
        "temporal_kernel": 3,  # 1 runs the same U-Net per frame (the SID-style 2D baseline)
        "resnet": False,  # residual blocks in place of every conv pair after the first
        # `replicate` pads time with copies of the end frames before each convolution, so short clips
        # and single frames are enhanced like a video's middle; `zeros` is the original's padding.
        "time_padding": "replicate",
        # auto: bf16 compute where the hardware runs it natively (a GPU of compute capability 8+,
        # a CPU with amx_bf16 or avx512_bf16), else float32. Weights are float32 either way.
        "precision": "auto",
    },
    "gan": {
        "enabled": False,  # add the per-frame discriminator; generator loss = loss.terms + adversarial
        "adversarial_weight": 1.0,  # the original added the adversarial loss to L1 unweighted
        "channels": [8, 16, 32, 64],  # per block: two 3x3 conv + batch-norm + lrelu, then a stride-2 conv
        "dense_units": [4096, 256],  # then a single raw logit
    },
    "train": {
        "crop_frames": 16,  # training crop: frames x packed height x packed width
        "crop_size": 128,  # packed pixels; the ground-truth crop is twice as large
        "batch_size": 1,  # global, over all devices
        "learning_rate": 1e-4,
        "lr_drop_epoch": 30,  # from this epoch on the learning rate is multiplied by lr_drop_factor
        "lr_drop_factor": 0.1,
        "clip_norm": None,  # clip each gradient tensor to this L2 norm (Adam clipnorm): a guard against spikes
        # The learning rate rises linearly to its value over these first steps. From init_weights,
        # a fresh Adam state would otherwise move every weight by about the learning rate at once.
        "warmup_steps": 0,
        # Validate and save an exponential moving average of the generator's weights (Polyak
        # averaging, e.g. 0.999: about the last 1000 steps) instead of the last step's; None: off.
        "ema_momentum": None,
        "epochs": 60,
        "steps_per_epoch": None,  # None: one pass over the sample plan; a number fixes the budget
        # Generator weights to start from instead of random ones: fine-tuning, e.g. the shipped
        # model (models/shipped/best.weights.h5) on your own clips. A resumed run ignores it.
        "init_weights": None,
        # An epoch visits start frames 0, stride, 2 * stride, ... (each plus a random 0 .. jitter-1)
        # of every training video, in a shuffled order.
        "start_stride": 4,
        "start_jitter": 4,
        "augment": True,  # Bayer-preserving flips and transpose, and time flips, each p = 0.5
        # The share of training crops that are one frame repeated: with replicated time padding the
        # network then learns single photos and the ends of clips, where it sees no neighbours.
        "still_probability": 0.1,
        # The share that hold a clip's first (or, time-flipped, last) frame after up to
        # test.mirror_frames mirrored ones, as test.py extends a clip's ends: the network then learns
        # frames whose neighbours lie on one side, repeated.
        "end_probability": 0.0,
        "preview_every": 5,  # epochs between side-by-side preview videos (0: never)
        "checkpoint_root": "1_checkpoint",  # checkpoints, logs and previews in ROOT/EXPERIMENT/
        "strategy": "default",  # default (one device), mirrored (all local GPUs), multi_worker (TF_CONFIG)
        "jit_compile": False,  # XLA
        "deterministic": False,  # deterministic ops: bit-exact reruns and resumes, somewhat slower
    },
    "test": {
        # Whole clips are enhanced in tiles: frames x packed pixels, overlapping and blended.
        # At most; the fewest equal windows that cover the clip are used. 72 with an overlap of 8
        # covers a 200-frame clip (SMOID's length) in 3 windows, with 8 % of the frames done twice.
        "tile_frames": 72,
        "tile_size": 512,  # at most, packed pixels (the output tile is twice as large)
        "overlap_frames": 8,
        # Frames mirrored at each end of a clip before enhancing, then dropped: the end frames (and
        # clips of a few frames) see neighbours on both sides. 8 gained 0.5-0.9 dB on the first frame
        # of 2-8 frame clips with the stage-2 shipped model. It lengthens each clip by 16 frames (on 200 frames:
        # one window more, 240 frames of work instead of 216).
        "mirror_frames": 8,
        "overlap_size": 32,  # packed pixels
        # The peak memory enhancing aims at, by inference.memory_plan's estimates: frames too large
        # for a window of them to fit are enhanced tile by tile through the whole clip, their input
        # and output in temporary files (TMPDIR), with smaller tiles where a tile's work must shrink.
        "memory_gib": 6.0,
        # Scale each enhanced frame (in linear light), region by region, so that its means equal the
        # input's (inference.anchor_colour): the network drifts in brightness and colour, the
        # input's means over a region do not. Linear input only (`he` input has no linear light).
        "anchor_colour": True,
        # Average the output over time where the picture stands still (inference.steady): the
        # network's residual noise changes every frame and flickers on still, textured scenes.
        "steady": True,
        # Views of each window enhanced and averaged (views.py): 1 is the window alone; up to 16
        # (2 time directions x 8 flips and transposes) lower the error, each costing one more pass.
        "self_ensemble": 1,
        # Views of a 1-frame clip (a photo): it has 8 (no time reversal), each a pass of one frame,
        # cheap next to a video's; 8 gained 0.36 dB on held-out single frames at ratio 200.
        "photo_self_ensemble": 8,
        # 1-frame clips (photos) go to a per-frame model trained for them: a weights file with its
        # config.yaml beside it; `shipped`: models/shipped_photo/ whenever the shipped model is the
        # video model; null: the video model enhances them too.
        "photo_weights": "shipped",
        "result_root": "2_result",  # results in ROOT/EXPERIMENT/CASE/
        "checkpoint": "best",  # best or last weights of the experiment
        "fps": 25.0,  # for clips whose sidecar gives none (camera raw folders)
    },
    "loss": {
        # The total loss is the weighted sum of these terms: cast, l1, region, structure, temporal, vgg.
        # Multi-loss 1: {structure: 1, region: 1, vgg: 0.01}; multi-loss 2: {l1: 1, structure: 1, region: 1}.
        "terms": {"l1": 1.0},
        "region_threshold": 0.7,  # ground-truth luminance below it is "dark"
        "region_weights": [4.0, 1.0],  # dark : bright
        "ms_ssim": False,  # structure = 1 - SSIM, plus 1 - MS-SSIM when true (frames >= 161 px)
        # VGG19 ImageNet weights (Keras' "notop" .h5). None looks in the Keras cache, ~/.keras/models.
        "vgg_weights": None,
    },
}

# Named sets of overrides. `smoid` is the original's protocol; `demo` fits a 2-core CPU.
PRESETS = {
    "smoid": {},  # the defaults above are the original's hyper-parameters
    "demo": {
        "model": {"base_channels": 16},
        "train": {"crop_frames": 8, "crop_size": 64, "batch_size": 4, "learning_rate": 5e-4,
                  "epochs": 30, "lr_drop_epoch": 24, "preview_every": 10},
    },
}
STRATEGIES = ("default", "mirrored", "multi_worker")
PRECISIONS = ("auto", "float32", "mixed_bfloat16")
TIME_PADDINGS = ("replicate", "zeros")

MAPPING_VALUES = {("loss", "terms")}  # mappings that an override replaces whole, not key by key
LOSS_TERMS = ("cast", "l1", "region", "structure", "temporal", "vgg")
DEPTHS = (2, 3, 4)
FOLDER_SETTINGS = ("data.input_dir", "data.gt_dir", "data.lists_dir", "data.customized_dir", "data.downloads_dir",
                   "train.checkpoint_root", "test.result_root")
FPS_RANGE = (1, 1000)  # frames a second that a video may be written at
LEAKY_SLOPE = 0.2  # leaky ReLU of every conv, as in the original
SSIM_WINDOW = 11  # pixels: the Gaussian window of SSIM, in the loss and in every score


NORMALIZATIONS = ("he", "linear")


def load_config(yaml_path=None, overrides=(), base=None):
    """Defaults, then the preset, then `base` (a mapping, e.g. from a checkpoint's config), then a
    YAML file, then `section.key=value` strings."""
    updates = [(base, "base configuration")] if base else []
    if yaml_path is not None:
        if not Path(yaml_path).is_file():
            raise FileNotFoundError(f"{yaml_path}: no such configuration file")
        loaded = read_yaml(Path(yaml_path).read_text(), yaml_path) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{yaml_path}: expected a mapping of sections, got {type(loaded).__name__}")
        updates.append((loaded, str(yaml_path)))
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} is not of the form section.key=value")
        *sections, leaf = key.split(".")
        value = read_yaml(text, f"override {item!r}")
        if isinstance(value, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", value):
            value = float(value)  # YAML 1.1 reads 1e-5 (no dot) as a string
        update = {leaf: value}
        for section in reversed(sections):
            update = {section: update}
        updates.append((update, f"override {item!r}"))
    preset = DEFAULTS["preset"]
    for update, _ in updates:
        preset = update.get("preset", preset)
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    cfg = copy.deepcopy(DEFAULTS)
    _merge(cfg, PRESETS[preset], where=f"preset {preset!r}")
    for update, where in updates:
        _merge(cfg, update, where)
    cfg["preset"] = preset
    cfg["experiment"] = cfg["experiment"] or preset
    validate(cfg)
    return cfg


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load's loader, except that a key given twice in one mapping is an error: PyYAML
    keeps the last one without a word, so the first of two settings would silently not count."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"the key {key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(text, where):
    """YAML text as Python values (safe: no object tags), every error one line naming `where`."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as error:
        mark, problem = getattr(error, "problem_mark", None), getattr(error, "problem", None) or str(error)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ValueError(f"{where}: not valid YAML ({at}{' '.join(problem.split())})") from None


def _merge(cfg, update, where, path=()):
    for key, value in update.items():
        if key not in cfg:
            raise KeyError(f"{where}: unknown key {key!r}; known keys: {sorted(cfg)}")
        if isinstance(cfg[key], dict) and path + (key,) not in MAPPING_VALUES:
            if not isinstance(value, dict):
                raise ValueError(f"{where}: {key!r} is a section and needs a mapping, got {value!r}")
            _merge(cfg[key], value, where, path + (key,))
        else:
            cfg[key] = value


# Every setting's type is its default's (_check_types): a bool must be true or false, an int a whole
# number (YAML reads `true` and `yes` as booleans, which Python would count as 1), a float any
# number, a str text, a list a list. A default of None says nothing of its type: those settings are
# checked by hand below. Only what a type cannot say is written here: the least each whole number
# may be, and the settings that name something by default but that null turns off.
MINIMUMS = {
    "seed": 0, "data.split_seed": 0, "synthesis.seed": 0,
    "synthesis.frames": 1, "synthesis.height": 2, "synthesis.width": 2,
    "synthesis.black_level": 0, "synthesis.white_level": 1,
    "model.base_channels": 1, "model.temporal_kernel": 1,
    "train.crop_frames": 1, "train.crop_size": 1, "train.batch_size": 1, "train.epochs": 1,
    "train.lr_drop_epoch": 0, "train.warmup_steps": 0, "train.start_stride": 1, "train.start_jitter": 1,
    "train.preview_every": 0,
    "test.tile_frames": 1, "test.tile_size": 1, "test.overlap_frames": 0, "test.overlap_size": 0,
    "test.mirror_frames": 0, "test.self_ensemble": 1, "test.photo_self_ensemble": 1,
}
NULLABLE = {"test.photo_weights"}
TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "text", list: "a list",
              dict: "a mapping"}


def default_leaves(tree=None, path=()):
    """(dotted name, default) of every setting: the leaves of DEFAULTS, a mapping value (loss.terms) as one."""
    for key, value in (DEFAULTS if tree is None else tree).items():
        if isinstance(value, dict) and path + (key,) not in MAPPING_VALUES:
            yield from default_leaves(value, path + (key,))
        else:
            yield ".".join(path + (key,)), value


def of_type(value, kind):
    """Whether `value` may stand where a default of type `kind` does."""
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return _integer(value)
    if kind is float:
        return _number(value)
    return isinstance(value, kind)


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _setting(cfg, dotted):
    for key in dotted.split("."):
        cfg = cfg[key]
    return cfg


def _check_types(cfg):
    """Values whose type or sign is wrong, named before they fail deep inside a script; the checks
    that say a range first, then every other setting against its default's type."""
    for dotted, least in MINIMUMS.items():
        value = _setting(cfg, dotted)
        if not (_integer(value) and value >= least):
            raise ValueError(f"{dotted} must be an integer >= {least}, got {value!r}")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", str(cfg["experiment"])) or ".." in str(cfg["experiment"]):
        raise ValueError(f"experiment must be a plain folder name (letters, digits, _ . -), got {cfg['experiment']!r}")
    held_out = cfg["data"]["held_out"]
    if not isinstance(held_out, list) or not all(isinstance(n, str) and n for n in held_out):
        raise ValueError(f"data.held_out must be a list of clip-name prefixes, e.g. [bikes], got {held_out!r}")
    ratio = cfg["data"]["ratio"]
    if ratio not in (None, "auto") and not (_number(ratio) and ratio > 0):
        raise ValueError(f"data.ratio must be a positive number, auto or null, got {ratio!r}")
    if not (_number(cfg["test"]["memory_gib"]) and cfg["test"]["memory_gib"] > 0):
        raise ValueError(f"test.memory_gib must be a number of GiB above 0, got {cfg['test']['memory_gib']!r}")
    fps = cfg["test"]["fps"]
    if not (_number(fps) and FPS_RANGE[0] <= fps <= FPS_RANGE[1]):
        raise ValueError(f"test.fps must be a number from {FPS_RANGE[0]} to {FPS_RANGE[1]} (players cannot show others), got {fps!r}")
    if cfg["train"]["clip_norm"] is not None and not (_number(cfg["train"]["clip_norm"]) and cfg["train"]["clip_norm"] > 0):
        raise ValueError(f"train.clip_norm must be a positive number or null, got {cfg['train']['clip_norm']!r}")
    ema = cfg["train"]["ema_momentum"]
    if ema is not None and not (_number(ema) and 0 < ema < 1):
        raise ValueError(f"train.ema_momentum must be a number between 0 and 1 (exclusive) or null, got {ema!r}")
    for key in ("learning_rate", "lr_drop_factor"):  # 0 is allowed: weights then stay where they start
        if not (_number(cfg["train"][key]) and cfg["train"][key] >= 0):
            raise ValueError(f"train.{key} must be a number >= 0, got {cfg['train'][key]!r}")
    for name, weight in cfg["loss"]["terms"].items() if isinstance(cfg["loss"]["terms"], dict) else ():
        if not (_number(weight) and weight >= 0):
            raise ValueError(f"loss.terms.{name} must be a number >= 0, got {weight!r}")


def _check_default_types(cfg):
    """Every setting against its default's type (default_leaves), after the checks that say more."""
    for dotted, default in default_leaves():
        value = _setting(cfg, dotted)
        if default is None or (value is None and dotted in NULLABLE) or of_type(value, type(default)):
            continue
        raise ValueError(f"{dotted} must be {TYPE_NAMES[type(default)]}, got {value!r}")


def _check_synthesis(synth):
    for side in ("height", "width"):
        if synth[side] % 2 or synth[side] < 2:
            raise ValueError(f"synthesis.{side} must be even and positive (Bayer blocks are 2x2), got {synth[side]}")
    if not 0 <= synth["black_level"] < synth["white_level"] <= 65535:
        raise ValueError("synthesis needs 0 <= black_level < white_level <= 65535")
    for key in ("colour_augment_probability", "illuminant_probability", "mixed_light_probability",
                "narrow_light_probability", "spot_light_probability"):
        if not (_number(synth[key]) and 0 <= synth[key] <= 1):
            raise ValueError(f"synthesis.{key} must be in [0, 1], got {synth[key]!r}")
    for key in ("brightness_mean", "brightness_std", "hue_range"):
        if not (_number(synth[key]) and synth[key] >= 0):
            raise ValueError(f"synthesis.{key} must be a number >= 0, got {synth[key]!r}")
    for key in ("ratio_range", "shot_gain_range", "read_noise_range", "row_noise_range",
                "red_gain_range", "blue_gain_range", "saturation_range", "illuminant_strength_range"):
        bounds = synth[key]
        if not (isinstance(bounds, (list, tuple)) and len(bounds) == 2 and all(map(_number, bounds))
                and 0 <= bounds[0] <= bounds[1]):
            raise ValueError(f"synthesis.{key} must be [low, high] with 0 <= low <= high, got {bounds!r}")


def validate(cfg):
    """Reject values that would fail later, before any work starts."""
    _check_types(cfg)
    data, synth = cfg["data"], cfg["synthesis"]
    if data["normalization"] not in NORMALIZATIONS:
        raise ValueError(f"data.normalization must be one of {NORMALIZATIONS}, got {data['normalization']!r}")
    if not (_number(data["split_fraction"]) and 0 < data["split_fraction"] < 0.5):
        raise ValueError(f"data.split_fraction must be in (0, 0.5), got {data['split_fraction']!r}")
    for dotted in FOLDER_SETTINGS:
        section, key = dotted.split(".")
        if not isinstance(cfg[section][key], str) or not cfg[section][key].strip():
            raise ValueError(f"{dotted} must name a folder, got {cfg[section][key]!r}")
    for key in ("input_dir", "gt_dir", "customized_dir"):  # their paths go into the lists
        if len(str(data[key]).split()) != 1:
            raise ValueError(f"data.{key} {data[key]!r}: the file lists are space-separated, as the original's, so "
                             "a data folder's path cannot hold spaces; move it or link it from a path without them")
    _check_synthesis(synth)
    model = cfg["model"]
    if model["depth"] not in DEPTHS:
        raise ValueError(f"model.depth must be one of {DEPTHS}, got {model['depth']!r}")
    if model["temporal_kernel"] % 2 == 0:
        raise ValueError(f"model.temporal_kernel must be odd, got {model['temporal_kernel']}")
    if model["precision"] not in PRECISIONS:
        raise ValueError(f"model.precision must be one of {PRECISIONS}, got {model['precision']!r}")
    if model["time_padding"] not in TIME_PADDINGS:
        raise ValueError(f"model.time_padding must be one of {TIME_PADDINGS}, got {model['time_padding']!r}")
    terms = cfg["loss"]["terms"]
    if not isinstance(terms, dict) or not terms:
        raise ValueError(f"loss.terms must be a non-empty mapping of {{name: weight}}, got {terms!r}")
    unknown = sorted(set(terms) - set(LOSS_TERMS))
    if unknown:
        raise ValueError(f"loss.terms: unknown loss {unknown[0]!r}; known losses: {', '.join(LOSS_TERMS)}")
    train = cfg["train"]
    if train["steps_per_epoch"] is not None and not (_integer(train["steps_per_epoch"]) and train["steps_per_epoch"] >= 1):
        raise ValueError(f"train.steps_per_epoch must be an integer >= 1 or null, got {train['steps_per_epoch']!r}")
    for key in ("still_probability", "end_probability"):
        if not (_number(train[key]) and 0 <= train[key] <= 1):
            raise ValueError(f"train.{key} must be in [0, 1], got {train[key]!r}")
    if train["still_probability"] + train["end_probability"] > 1:
        raise ValueError("train.still_probability + train.end_probability (shares of the crops) must be at most 1, "
                         f"got {train['still_probability']} + {train['end_probability']}")
    if train["strategy"] not in STRATEGIES:
        raise ValueError(f"train.strategy must be one of {STRATEGIES}, got {train['strategy']!r}")
    test = cfg["test"]
    if not 0 <= test["overlap_frames"] < test["tile_frames"] or not 0 <= test["overlap_size"] < test["tile_size"]:
        raise ValueError("test overlaps must be at least 0 and smaller than their tiles "
                         f"(tile_frames {test['tile_frames']}, overlap_frames {test['overlap_frames']}, "
                         f"tile_size {test['tile_size']}, overlap_size {test['overlap_size']})")
    for key in ("self_ensemble", "photo_self_ensemble"):
        if test[key] > MAX_VIEWS:
            raise ValueError(f"test.{key} must be an integer from 1 to {MAX_VIEWS}, got {test[key]!r}")
    if test["photo_weights"] is not None and not isinstance(test["photo_weights"], str):
        raise ValueError(f"test.photo_weights must be a weights file, shipped or null, got {test['photo_weights']!r}")
    if test["checkpoint"] not in ("best", "last"):
        raise ValueError(f"test.checkpoint must be best or last, got {test['checkpoint']!r}")
    if 2 * train["crop_size"] < SSIM_WINDOW:  # else validation fails after the first epoch, or scores an empty window
        raise ValueError(f"train.crop_size must be at least {(SSIM_WINDOW + 1) // 2}: validation scores SSIM with an "
                         f"{SSIM_WINDOW}-pixel window on the ground truth, twice the crop; got {train['crop_size']}")
    if cfg["loss"]["ms_ssim"] and 2 * train["crop_size"] < 161:
        raise ValueError(f"loss.ms_ssim needs ground-truth crops of at least 161 pixels, "
                         f"train.crop_size {train['crop_size']} gives {2 * train['crop_size']}")
    _check_default_types(cfg)
