"""Which weights a run uses, with the settings they were trained with, and the model they build.

The shipped model (models/shipped/) stands in for the preset's experiment until that is trained;
photos (1-frame clips) go to the per-frame model shipped beside it (test.photo_weights). A
checkpoint's config.yaml decides the architecture and how its input was normalised
(CHECKPOINT_KEYS), so `python test.py 2` needs none of the training's overrides again.
"""
import re
from pathlib import Path

import config
import network
from inference import TiledEnhancer

# What a checkpoint's own config decides at test time: the model, and what its input looked like.
# Precision is not among them: weights are float32 whichever precision trained them.
CHECKPOINT_KEYS = {"model": ("depth", "base_channels", "temporal_kernel", "resnet", "time_padding"),
                   "data": ("normalization", "apply_ccm", "ratio", "clip_negative")}
SHIPPED = Path(__file__).resolve().parent / "models" / "shipped" / "best.weights.h5"
SHIPPED_PHOTO = Path(__file__).resolve().parent / "models" / "shipped_photo" / "best.weights.h5"


def weights_path(cfg, explicit=None):
    """--weights, else the experiment's checkpoint. The shipped model stands in for the preset's own
    experiment until that is trained, and `experiment=shipped` names it; any other experiment must
    have been trained, so that a mistyped name stops instead of scoring the shipped model."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such weights file")
        return path
    path = Path(cfg["train"]["checkpoint_root"]) / cfg["experiment"] / f"{cfg['test']['checkpoint']}.weights.h5"
    if path.is_file():
        return path
    if cfg["experiment"] in (SHIPPED.parent.name, cfg["preset"]) and SHIPPED.is_file():
        return SHIPPED
    raise FileNotFoundError(f"no trained weights for experiment {cfg['experiment']!r} at {path}: train it "
                            f"(python train.py --set experiment={cfg['experiment']}), pass --weights PATH, or set "
                            f"experiment={SHIPPED.parent.name} for the shipped model")


def saved_config(weights):
    """The config.yaml that train.py wrote beside the weights, or None."""
    path = Path(weights).parent / "config.yaml"
    if not path.is_file():
        return None
    saved = config.read_yaml(path.read_text(), path)
    if not isinstance(saved, dict):
        raise ValueError(f"{path}: expected the mapping of sections that train.py writes, got {type(saved).__name__}")
    return saved


def checkpoint_settings(saved):
    """{section: {key: value}} of the CHECKPOINT_KEYS that a saved config.yaml (or None) holds."""
    return {section: {k: v for k, v in (saved or {}).get(section, {}).items() if k in keys}
            for section, keys in CHECKPOINT_KEYS.items()}


def configure(overrides=(), yaml_path=None, explicit_weights=None):
    """(cfg, weights): the weights to use (`explicit_weights`, else the experiment's), and the
    configuration (a YAML file, then `section.key=value` overrides) on top of the model and input
    settings that built them, so `python test.py 2` needs none of the training's overrides again.
    cfg["experiment"] becomes the name the results are filed under: the model's own (results_name)."""
    cfg = config.load_config(yaml_path, overrides)
    weights = weights_path(cfg, explicit_weights)
    saved = saved_config(weights)
    if saved is not None:
        cfg = config.load_config(yaml_path, overrides, base=checkpoint_settings(saved))
        check_input_settings(cfg, saved, weights)
    cfg["experiment"] = results_name(cfg, weights, explicit_weights)
    return cfg, weights


def check_input_settings(cfg, saved, weights):
    """A setting of how the input is normalised that differs from the one the weights were trained
    with would ruin the output without a word (washed out, a cast): it stops instead. The exposure
    ratio is the clip's, not the model's, and may differ."""
    for key in ("normalization", "apply_ccm", "clip_negative"):
        trained = saved.get("data", {}).get(key)
        if trained is not None and cfg["data"][key] != trained:
            raise ValueError(f"data.{key}={cfg['data'][key]} contradicts the weights {weights}: they were trained on "
                             f"data.{key}={trained} (their config.yaml); leave the setting out")


def results_name(cfg, weights, explicit):
    """The folder under test.result_root that this model's results go to: `shipped` for the
    shipped model, WEIGHTS-FOLDER_NAME for --weights (another model's results are never filed under
    the preset's experiment), EXPERIMENT for its best weights, EXPERIMENT_last for its last."""
    if Path(weights).resolve() == SHIPPED.resolve():
        return SHIPPED.parent.name
    if explicit:
        name = f"{Path(weights).resolve().parent.name}_{Path(weights).name.removesuffix('.h5').removesuffix('.weights')}"
        return re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    return cfg["experiment"] if cfg["test"]["checkpoint"] == "best" else f"{cfg['experiment']}_{cfg['test']['checkpoint']}"


def photo_weights_path(cfg, weights):
    """The weights of the per-frame model that enhances 1-frame clips (photos), or None: as
    test.photo_weights says, where `shipped` means models/shipped_photo/ beside the shipped model."""
    choice = cfg["test"]["photo_weights"]
    if choice == "shipped":
        return SHIPPED_PHOTO if Path(weights).resolve() == SHIPPED.resolve() and SHIPPED_PHOTO.is_file() else None
    if choice is not None and not Path(choice).is_file():
        raise FileNotFoundError(f"test.photo_weights: {choice}: no such weights file")
    return None if choice is None else Path(choice)


def photo_config(cfg, weights, photo_weights):
    """cfg with the photo model's own model settings; its input must be normalised as the video model's."""
    saved = saved_config(photo_weights)
    if saved is None:
        raise FileNotFoundError(f"test.photo_weights: {photo_weights}: no config.yaml beside it (train.py writes one)")
    video, photo = checkpoint_settings(saved_config(weights)), checkpoint_settings(saved)
    differs = [f"data.{key}" for key in CHECKPOINT_KEYS["data"] if video["data"].get(key) != photo["data"].get(key)]
    if differs:
        raise ValueError(f"test.photo_weights: {photo_weights} was trained on other input than {weights} "
                         f"({', '.join(differs)} differ in their config.yaml)")
    return {**cfg, "model": {**cfg["model"], **photo["model"]}}


def load_generator(cfg, weights):
    """The configured U-Net with the weights; a misfit names what differs from the checkpoint."""
    model = network.build_unet(cfg["model"])
    network.load_weights(model, cfg["model"], weights, checkpoint_settings(saved_config(weights))["model"])
    return model


def make_enhancer(cfg, weights, photos=True):
    """The TiledEnhancer of the weights, with the photo model for 1-frame clips where `photos` may
    come (test.photo_weights is checked either way)."""
    print(f"weights: {weights}")
    print("precision: {} ({})".format(*network.resolve_precision(cfg["model"])))
    photo, photo_weights = None, photo_weights_path(cfg, weights)
    if photo_weights:
        photo_cfg = photo_config(cfg, weights, photo_weights)
        if photos:
            print(f"photos (1-frame clips): {photo_weights}")
            photo = TiledEnhancer(load_generator(photo_cfg, photo_weights), cfg["test"])
    return TiledEnhancer(load_generator(cfg, weights), cfg["test"], photo)
