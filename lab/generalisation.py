"""How a trained model does on footage it never saw: a held-out source at several exposure ratios and
under coloured light, single frames and short clips, and a camera raw file against LibRaw's own
rendering.

    python -m lab.generalisation [--set experiment=NAME ...]          the default tables for one model
    python -m lab.generalisation --compare NAME [NAME ...]             held-out tables of several models
                             [--table KEY]                         (published as KEY, else `breadth`)
    python -m lab.generalisation --short-clips NAME [NAME ...]         short-clip tables of several models
                             [--table KEY]                         (published as KEY, else `short_clips_compare`)
    python -m lab.generalisation --views COUNT [COUNT ...]             held-out tables with test.self_ensemble views
    python -m lab.generalisation --noise                               what less of each kind of noise gains
    python -m lab.generalisation --saturated [--table KEY]             a DNG under saturated LED light against LibRaw
    python -m lab.generalisation --auto-ratio                          the exposure chosen from the frames

The model is the experiment's (else the shipped one, as test.py picks it). The held-out source
(data.held_out, `bikes` by default) is synthesised again into data.lists_dir/heldout_*: with white
light and no colour changes at each ratio of RATIOS, and at ratio 200 under a coloured light
(synthesis.ILLUMINANTS) and under a narrow-band one (synthesis.NARROW_ILLUMINANTS, half of the clips
with a pool of a second light). Tables go to figure/ and between their markers in README.md and docs/.
"""
import argparse
import dataclasses
from pathlib import Path

import cv2
import numpy as np
import rawpy

import camera_raw
import checkpoints
import cli
import config
import data
import enhance
from lab import figures
import generate_file_list
import metrics
import synthesis
from atomic import atomic_output
from video_io import to_uint8

RATIOS = (50, 100, 200, 300)
COLOURED_RATIO = 200
TARGET_RATIO = 200  # the ratio the shipped model's targets are set at
SHORT_FRAMES = (1, 2, 4, 8, 16)
BURST_FRAMES = 8
NEUTRAL = {"illuminant_probability": 0.0, "colour_augment_probability": 0.0}
COLOURED = {"illuminant_probability": 1.0, "colour_augment_probability": 0.0}
# Narrow-band light (an LED, sodium), half of the clips with a pool of a second light: saturated colour
NARROW = {**COLOURED, "narrow_light_probability": 1.0, "mixed_light_probability": 0.5, "spot_light_probability": 1.0}
COLOUR_COLUMNS = "cast R, G, B | chroma err | angle median, p90 (deg)"


# ---------------------------------------------------------------------------------------------
# Held-out clips


def held_out_list(label, synthesis_changes, overrides):
    """The held-out source's clips synthesised again with `synthesis_changes`; returns the list."""
    cfg = config.load_config(overrides=overrides)
    root = Path(cfg["data"]["lists_dir"]) / f"heldout_{label}"
    data_cfg = {**cfg["data"], "input_dir": str(root / "train_he"), "gt_dir": str(root / "gt_he")}
    sources = [s for s in synthesis.default_sources() if s[0].startswith(tuple(cfg["data"]["held_out"]))]
    synthesis.synthesize_sources(sources, {**cfg, "data": data_cfg, "synthesis": {**cfg["synthesis"], **synthesis_changes}})
    path = Path(cfg["data"]["lists_dir"]) / f"heldout_{label}_list"
    generate_file_list.write_list(path, [name for name, _, _ in sources], data_cfg)
    return path


def white_light_list(ratio, overrides, suffix="", changes=None):
    """The held-out source at one exposure ratio under white light, with `changes` to the synthesis
    (listed as ratio_RATIO`suffix`); returns the list."""
    return held_out_list(f"ratio_{ratio}{suffix}", {**NEUTRAL, "ratio_range": [ratio, ratio], **(changes or {})}, overrides)


def held_out_lists(overrides, ratios=RATIOS):
    """The held-out source under white light at each of `ratios`, under a coloured light and under
    a narrow-band one."""
    lists = {f"held-out source, ratio {r}": white_light_list(r, overrides) for r in ratios}
    at = {"ratio_range": [COLOURED_RATIO, COLOURED_RATIO]}
    lists[f"held-out source, coloured light, ratio {COLOURED_RATIO}"] = held_out_list("coloured", {**COLOURED, **at}, overrides)
    lists[f"held-out source, narrow-band light, ratio {COLOURED_RATIO}"] = held_out_list("narrow", {**NARROW, **at}, overrides)
    return lists


def measure(list_path, overrides):
    """test.py's evaluation of a list, with the model's and the command line's settings; returns the
    overall {method: scores}."""
    cfg, weights = checkpoints.configure(overrides)
    folder = Path(cfg["test"]["result_root"]) / cfg["experiment"] / Path(list_path).name
    return enhance.evaluate(data.open_list(list_path, cfg["data"]), cfg, weights, folder)


def cast_cells(s):
    return f"{s['cast_r']:+.1f}, {s['cast_g']:+.1f}, {s['cast_b']:+.1f}"


def colour_cells(s):
    return f"{cast_cells(s)} | {s['chroma_error']:.3f} | {s['angle_median']:.2f}, {s['angle_p90']:.2f}"


def head(header):
    """A markdown table's header line and the rule under it, one `---` a column."""
    return [header, "|" + " --- |" * header.count("|", 1)]


def held_out_results(overrides):
    """{clips label: test.py's overall scores} on the test list and the held-out lists."""
    cfg = config.load_config(overrides=overrides)
    lists = {"test list": Path(cfg["data"]["lists_dir"]) / "test_list", **held_out_lists(overrides)}
    return {label: measure(path, overrides) for label, path in lists.items()}


def held_out_table(results):
    lines = head(f"| clips | PSNR | SSIM | MSE(MABD) 1e-3 | motion | flicker (levels) | {COLOUR_COLUMNS} | "
                 "linear baseline PSNR | HE baseline PSNR |")
    for label, overall in results.items():
        net = overall["network"]
        lines.append(f"| {label} | {net['psnr']:.2f} | {net['ssim']:.3f} | {net['mse_mabd']:.3f} | {net['motion']:.2f} | "
                     f"{net['flicker']:.2f} | {colour_cells(net)} | {overall['linear']['psnr']:.2f} | {overall['he']['psnr']:.2f} |")
    return "\n".join(lines) + "\n"


def steady_table(results, overrides):
    """The test list and the held-out lists again with test.steady off (results in their own
    folder), beside `results`: how much the output flickers where the scene stands still, and what
    averaging over time costs or gains elsewhere."""
    cfg = config.load_config(overrides=overrides)
    without = [*overrides, "test.steady=false", f"test.result_root={cfg['test']['result_root']}/without_steady"]
    lists = {"test list": Path(cfg["data"]["lists_dir"]) / "test_list", **held_out_lists(overrides)}
    lines = head("| clips | PSNR without -> with | SSIM without -> with | motion without -> with | "
                 "flicker (levels) without -> with | warp err (levels) without -> with |")
    for label, path in lists.items():
        off, on = measure(path, without)["network"], results[label]["network"]
        cells = [f"{off[k]:{f}} -> {on[k]:{f}}" for k, f in
                 (("psnr", ".2f"), ("ssim", ".3f"), ("motion", ".2f"), ("flicker", ".2f"), ("warp_error", ".2f"))]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def anchor_table(results, overrides):
    """The held-out lists again with test.anchor_colour off (results in their own folder), beside `results`."""
    cfg = config.load_config(overrides=overrides)
    without = [*overrides, "test.anchor_colour=false", f"test.result_root={cfg['test']['result_root']}/without_anchor"]
    lines = ["| clips | PSNR without -> with | SSIM without -> with | cast R, G, B without | cast R, G, B with | "
             "chroma err without -> with |", "| --- | --- | --- | --- | --- | --- |"]
    for label, path in held_out_lists(overrides).items():
        off, on = measure(path, without)["network"], results[label]["network"]
        lines.append(f"| {label} | {off['psnr']:.2f} -> {on['psnr']:.2f} | {off['ssim']:.3f} -> {on['ssim']:.3f} | "
                     f"{cast_cells(off)} | {cast_cells(on)} | "
                     f"{off['chroma_error']:.3f} -> {on['chroma_error']:.3f} |")
    return "\n".join(lines) + "\n"


def compare_table(experiments, overrides):
    """Several trained models on the held-out source at the target ratio, white, coloured and narrow-band light."""
    chosen = held_out_lists(overrides, ratios=(TARGET_RATIO,))
    lines = head(f"| model | clips | PSNR | SSIM | MSE(MABD) 1e-3 | {COLOUR_COLUMNS} |")
    for experiment in experiments:
        for label, path in chosen.items():
            net = measure(path, [*overrides, f"experiment={experiment}"])["network"]
            lines.append(f"| {experiment} | {label} | {net['psnr']:.2f} | {net['ssim']:.3f} | {net['mse_mabd']:.3f} | "
                         f"{colour_cells(net)} |")
    return "\n".join(lines) + "\n"


def views_table(counts, overrides):
    """The held-out lists enhanced with each count of test.self_ensemble views (results in their
    own folders): what averaging views gains, at one more network pass a view."""
    cfg = config.load_config(overrides=overrides)
    lines = head(f"| clips | views | PSNR | SSIM | MSE(MABD) 1e-3 | {COLOUR_COLUMNS} |")
    for label, path in held_out_lists(overrides).items():
        for count in counts:
            net = measure(path, [*overrides, f"test.self_ensemble={count}",
                                 f"test.result_root={cfg['test']['result_root']}/views_{count}"])["network"]
            lines.append(f"| {label} | {count} | {net['psnr']:.2f} | {net['ssim']:.3f} | {net['mse_mabd']:.3f} | "
                         f"{colour_cells(net)} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# What each noise costs


def noise_changes(synth_cfg):
    """{row label: (white_light_list suffix, synthesis changes)}: row noise left out (its range [0, 0]),
    read noise at the least that training draws (its range's floor), and both. Every other draw,
    shot noise included, stays the same, as synthesis draws from a range of one value too. The first
    is the generalisation table's own list."""
    floor = synth_cfg["read_noise_range"][0]
    quiet, low_read = {"row_noise_range": [0.0, 0.0]}, {"read_noise_range": [floor, floor]}
    return {"as synthesised": ("", {}),
            "without row noise": ("_no_row_noise", quiet),
            f"read noise {floor:g} DN": ("_low_read_noise", low_read),
            "both": ("_low_noise", {**quiet, **low_read})}


def noise_table(overrides):
    """The held-out source at the target ratio, the same clips with less of each noise in turn, all
    within what training drew: what each kind of noise costs the model, and so which it removes worst."""
    cfg = config.load_config(overrides=overrides)
    lines = head(f"| held-out source, ratio {TARGET_RATIO} | row, read noise (DN, rms) | PSNR | difference (dB) | SSIM | "
                 f"MSE(MABD) 1e-3 | {COLOUR_COLUMNS} |")
    reference = None
    for label, (suffix, changes) in noise_changes(cfg["synthesis"]).items():
        path = white_light_list(TARGET_RATIO, overrides, suffix, changes)
        drawn = [clip.meta["simulation"] for clip in data.open_list(path, cfg["data"])]
        row, read = (np.sqrt(np.mean([d[key] ** 2 for d in drawn])) for key in ("row_noise", "read_noise"))
        net = measure(path, overrides)["network"]
        reference = net["psnr"] if reference is None else reference
        lines.append(f"| {label} | {row:.2f}, {read:.2f} | {net['psnr']:.2f} | {net['psnr'] - reference:+.2f} | "
                     f"{net['ssim']:.3f} | {net['mse_mabd']:.3f} | {colour_cells(net)} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Single frames and short clips


def frame_scores(gt_frame, frame):
    scores = metrics.VideoScores()
    scores.update(gt_frame[None], frame[None])
    return scores.result()


def static_burst(clip, frame, frames):
    """`frames` exposures of one frame's scene by the clip's own camera, each with its own noise: as
    many independent exposures as a video's middle frame has around it, without the motion."""
    params = synthesis.CameraParams(**clip.meta["simulation"])
    scene = np.repeat(np.asarray(clip.gt_rgb[frame:frame + 1]), frames, axis=0)
    return synthesis.synthesize(scene, params, synthesis.clip_rng(0, clip.name, "burst"))


def short_clip_scores(overrides, middle=24):
    """{row label: mean scores} of frame `middle` of each held-out clip (ratio 200), enhanced within
    the whole clip, and as the first frame of a clip of 1, 2, 4, 8 and 16 frames: how much a clip's
    end costs. Two last rows enhance a static burst of that frame's scene: its first frame says
    whether a short clip lacks frames or exposures, its middle frame what an end costs without motion."""
    cfg, weights = checkpoints.configure(overrides)
    enhancer = checkpoints.make_enhancer(cfg, weights)
    clips = data.open_list(white_light_list(TARGET_RATIO, overrides), cfg["data"])
    rows = {"whole clip": []} | {f"{n} frame{'s' * (n > 1)}": [] for n in SHORT_FRAMES}
    burst_label = f"{BURST_FRAMES}-frame static burst (same scene, fresh noise)"
    burst_middle_label = f"the same burst, its middle frame ({BURST_FRAMES // 2})"
    rows[burst_label], rows[burst_middle_label] = [], []
    for clip in clips:
        gt_frame = np.asarray(clip.gt_rgb[middle])
        whole = np.concatenate([rgb for _, rgb in enhancer.enhance(clip)])
        rows["whole clip"].append(frame_scores(gt_frame, whole[middle]))
        for n, label in zip(SHORT_FRAMES, list(rows)[1:]):
            short = dataclasses.replace(clip, packed_raw=clip.packed_raw[middle:middle + n])
            first = next(enhancer.enhance(short))[1][0]
            rows[label].append(frame_scores(gt_frame, first))
        burst = dataclasses.replace(clip, packed_raw=static_burst(clip, middle, BURST_FRAMES))
        burst_rgb = np.concatenate([rgb for _, rgb in enhancer.enhance(burst)])
        rows[burst_label].append(frame_scores(gt_frame, burst_rgb[0]))
        rows[burst_middle_label].append(frame_scores(gt_frame, burst_rgb[BURST_FRAMES // 2]))
    return {label: {k: float(np.mean([s[k] for s in scores])) for k in scores[0] if k != "frames"}
            for label, scores in rows.items()}


def short_clip_table(overrides, experiments=(None,), middle=24):
    """short_clip_scores as a table; for several experiments, one block of rows each, named in a
    first column."""
    named = experiments != (None,)
    lines = head(("| model " if named else "") + f"| frame {middle} enhanced in | PSNR | difference (dB) | SSIM | {COLOUR_COLUMNS} |")
    for experiment in experiments:
        rows = short_clip_scores([*overrides, f"experiment={experiment}"] if named else overrides, middle)
        for label, mean in rows.items():
            lines.append((f"| {experiment} " if named else "") + f"| {label} | {mean['psnr']:.2f} | "
                         f"{mean['psnr'] - rows['whole clip']['psnr']:+.2f} | {mean['ssim']:.3f} | {colour_cells(mean)} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# A camera raw file against LibRaw's own rendering


def camera_raw_frame(folder, overrides, ratio=50):
    """One held-out frame under blue stage light, as a camera would record it in a DNG (RGGB, its
    own XYZ -> camera matrix, as-shot neutral); returns the ratio that restores its exposure and
    the scene's mean chromaticity (linear sRGB)."""
    cfg = config.load_config(overrides=overrides)
    name, _, load = next(s for s in synthesis.default_sources() if s[0].startswith(tuple(cfg["data"]["held_out"])))
    synth = {**cfg["synthesis"], "frames": 1, "ratio_range": [ratio, ratio]}
    scene = synthesis.SceneParams(0.0, 1.0, [synthesis.ILLUMINANTS["blue_stage"]], 0.0)
    gt_rgb = synthesis.light_scene(load(synth)[0], scene)
    rng = synthesis.clip_rng(0, "camera_raw_check")
    params = synthesis.draw_camera_params(rng, synth)
    mosaic = data.mosaic_from_packed(synthesis.synthesize(gt_rgb, params, rng))[0]
    cam_xyz = np.asarray(params.rgb_to_cam) @ np.linalg.inv(config.SRGB_TO_XYZ)
    neutral = (1 / params.red_gain, 1.0, 1 / params.blue_gain)
    Path(folder).mkdir(parents=True, exist_ok=True)
    camera_raw.write_dng(Path(folder) / "frame.dng", mosaic[1:-1], "RGGB", params.black_level, params.white_level,
                         neutral, cam_xyz)
    return params.recorded_ratio, linear_chromaticity(gt_rgb, synthesis.srgb_to_linear)


def linear_chromaticity(srgb_frames, curve):
    return metrics.chromaticity(curve(srgb_frames).reshape(-1, 3).mean(axis=0))


def camera_raw_table(overrides):
    """Mean chromaticity of the enhanced DNG and of LibRaw's rendering of it at the same brightness
    (camera white balance, no auto-brightness, linear output), both compared in linear sRGB."""
    cfg = config.load_config(overrides=overrides)
    folder = Path(cfg["data"]["lists_dir"]) / "camera_raw_check"
    ratio, scene = camera_raw_frame(folder, overrides)
    cfg, weights = checkpoints.configure([*overrides, f"data.ratio={ratio}"])
    enhancer = checkpoints.make_enhancer(cfg, weights)
    clip = enhance.open_input(folder, cfg)
    output = np.concatenate([rgb for _, rgb in enhancer.enhance(clip)])
    with rawpy.imread(str(folder / "frame.dng")) as raw:
        libraw = raw.postprocess(use_camera_wb=True, no_auto_bright=True, bright=ratio, gamma=(1, 1),
                                 output_bps=16, output_color=rawpy.ColorSpace.sRGB)
    ours = linear_chromaticity(output, synthesis.srgb_to_linear)
    reference = metrics.chromaticity(libraw.reshape(-1, 3).astype(np.float64).mean(axis=0))
    packed = clip.normalize(clip.packed_raw[0:1]).reshape(-1, 4)
    network_input = metrics.chromaticity(data.block_rgb(packed.mean(axis=0, dtype=np.float64)))
    lines = ["| rendering of the DNG | chromaticity r, g, b (linear sRGB) | distance to LibRaw |", "| --- | --- | --- |"]
    for label, chroma in (("LibRaw (camera white balance, same brightness)", reference),
                          ("the scene (the ground truth it was made from)", scene), ("this model", ours),
                          ("the network's input (white-balanced, colour-corrected)", network_input)):
        lines.append(f"| {label} | {chroma[0]:.3f}, {chroma[1]:.3f}, {chroma[2]:.3f} | "
                     f"{np.linalg.norm(chroma - reference):.3f} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Saturated light: a DNG lit by a near single-wavelength LED, with objects of other colours


SATURATED_LED = (0.0, 0.02, 1.0)  # camera RGB after white balance: a blue LED, beyond sRGB's gamut
SATURATED_AMBIENT = 0.03  # broad light under it, in every channel
WOOD, SPOT = (0.45, 0.16, 0.05), 0.6  # an orange-brown object (linear sRGB) under a broad white spot
OBJECT_MARGIN = 12  # pixels of the object's border left out of its colour: the network blurs its edges into the blue


def saturated_scene(gt_rgb, camera):
    """Linear camera RGB (white-balanced) of held-out frames lit by SATURATED_LED, with a wooden
    object under a white spot; and the object's box."""
    linear = synthesis.srgb_to_linear(gt_rgb)
    frames, height, width, _ = linear.shape
    box = (slice(height // 2 - height // 8, height // 2 + height // 8), slice(width // 8, width // 8 + width // 4))
    linear[:, box[0], box[1]] = WOOD
    light = np.broadcast_to(np.float32(SATURATED_LED) + SATURATED_AMBIENT, linear.shape).copy()
    light[:, box[0], box[1]] = SPOT
    return linear @ np.asarray(camera.rgb_to_cam, np.float32).T * light, box


def write_saturated_dngs(folder, frames, overrides, ratio=50):
    """`frames` noisy DNGs of one held-out frame's scene (a static burst) under SATURATED_LED, and one
    without noise at full exposure (LibRaw's rendering of it is the reference); returns the ratio
    that restores the exposure and the object's box."""
    cfg = config.load_config(overrides=overrides)
    _, _, load = next(s for s in synthesis.default_sources() if s[0].startswith(tuple(cfg["data"]["held_out"])))
    synth = {**cfg["synthesis"], "frames": 1, "ratio_range": [ratio, ratio]}
    rng = synthesis.clip_rng(0, "saturated_light")
    camera = synthesis.draw_camera_params(rng, synth)
    scene, box = saturated_scene(load(synth)[0], camera)
    unbalance = np.float32([1 / camera.red_gain, 1.0, 1 / camera.blue_gain])
    mosaic = synthesis.mosaic(scene[0] * unbalance)
    dng = {"cfa": "RGGB", "black": camera.black_level, "white": camera.white_level,
           "neutral": tuple(unbalance), "cam_xyz": np.asarray(camera.rgb_to_cam) @ np.linalg.inv(config.SRGB_TO_XYZ)}
    scale = camera.white_level - camera.black_level
    clean = np.clip(np.round(mosaic * scale + camera.black_level), 0, camera.white_level).astype(np.uint16)
    for path in (Path(folder) / "reference", Path(folder) / "burst"):
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.dng"):
            stale.unlink()
    camera_raw.write_dng(Path(folder) / "reference" / "frame.dng", clean[1:-1], **dng)
    exposed = dataclasses.replace(camera, brightness=1.0)
    for f in range(frames):
        camera_raw.write_dng(Path(folder) / "burst" / f"frame_{f:02d}.dng", synthesis.expose(mosaic[None], exposed, rng)[0][1:-1], **dng)
    return exposed.recorded_ratio, box


def libraw_linear(path, bright=1.0):
    """LibRaw's own rendering of a raw file: camera white balance, no auto-brightness, linear sRGB."""
    with rawpy.imread(str(path)) as raw:
        return raw.postprocess(use_camera_wb=True, no_auto_bright=True, bright=bright, gamma=(1, 1), output_bps=16,
                               output_color=rawpy.ColorSpace.sRGB).astype(np.float32) / 65535


def saturated_light_table(overrides, sheet_path=None):
    """A saturated-light DNG as a photo and as an 8-frame burst, enhanced with and without the
    colour anchor, against LibRaw's rendering of the same scene without noise: the angular error
    (metrics.angular_errors), the object's own angle and PSNR. With `sheet_path`, a sheet of crops
    around the object, one row per frame count: LibRaw | with the anchor | without."""
    cfg = config.load_config(overrides=overrides)
    folder = Path(cfg["data"]["lists_dir"]) / "saturated_light_check"
    lines = ["| frames | colour anchor | angular error median, p90 (deg) | the wooden object's angle (deg) | "
             "PSNR against LibRaw |", "| --- | --- | --- | --- | --- |"]
    rows = []
    for frames in (1, BURST_FRAMES):
        ratio, box = write_saturated_dngs(folder, frames, overrides)
        reference = libraw_linear(folder / "reference" / "frame.dng")
        panels = [reference]
        for anchor in (True, False):
            cfg, weights = checkpoints.configure([*overrides, f"data.ratio={ratio}", f"test.anchor_colour={anchor}"])
            enhancer = checkpoints.make_enhancer(cfg, weights)
            clip = enhance.open_input(folder / "burst", cfg)
            output = np.concatenate([rgb for _, rgb in enhancer.enhance(clip)])
            ours = synthesis.LEVEL_TO_LINEAR[output[frames // 2]]
            ours = cv2.resize(ours, reference.shape[1::-1], interpolation=cv2.INTER_AREA)  # one raw row, cropped for GBRG
            panels.append(ours)
            angles = metrics.angular_errors(reference, ours)
            inner = tuple(slice(s.start + OBJECT_MARGIN, s.stop - OBJECT_MARGIN) for s in box)
            wood = metrics.angular_errors(reference[inner].mean(axis=(0, 1))[None, None], ours[inner].mean(axis=(0, 1))[None, None])
            psnr = metrics.psnr(*(to_uint8(synthesis.linear_to_srgb(image))[None] for image in (reference, ours)))[0]
            lines.append(f"| {frames} | {'on' if anchor else 'off'} | {np.median(angles):.2f}, {np.percentile(angles, 90):.2f} | "
                         f"{wood[0]:.1f} | {psnr:.2f} |")
        rows.append(object_crops(panels, box))
    if sheet_path:
        write_sheet(sheet_path, rows)
    return "\n".join(lines) + "\n"


def object_crops(panels, box):
    """The linear frames `panels` cropped to the object's box with half its size around it, side by
    side in sRGB uint8, 4 white columns apart."""
    rows, cols = (slice(max(s.start - (s.stop - s.start) // 2, 0), s.stop + (s.stop - s.start) // 2) for s in box)
    return spaced([to_uint8(synthesis.linear_to_srgb(panel[rows, cols])) for panel in panels], axis=1)


def spaced(images, axis):
    """uint8 RGB `images` joined along `axis` (0: rows, 1: columns), 4 white pixels apart."""
    gap_shape = list(images[0].shape)
    gap_shape[axis] = 4
    gap = np.full(gap_shape, 255, np.uint8)
    return np.concatenate([part for image in images for part in (image, gap)][:-1], axis=axis)


def write_sheet(path, rows):
    with atomic_output(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(spaced(rows, axis=0), cv2.COLOR_RGB2BGR)):
            raise OSError(f"{path}: OpenCV could not write it")


# ---------------------------------------------------------------------------------------------
# Exposure chosen from the frames (data.ratio=auto)


def auto_ratio_table(overrides):
    """AUTO_TARGET from the training list (the median of its clips' bright end at their true ratio),
    then the held-out source at each ratio enhanced at the ratio chosen from its frames against
    the true one."""
    cfg = config.load_config(overrides=overrides)
    training = data.open_list(Path(cfg["data"]["lists_dir"]) / "file_list", cfg["data"])
    levels = [data.clip_brightness_percentile(c.packed_raw, c.meta, cfg["data"], c.name) * c.meta["ratio"] for c in training]
    lines = [f"The training list's {len(levels)} clips at their true ratio: their {data.AUTO_PERCENTILE:g}th percentile of "
             f"luminance has median {np.median(levels):.2f} (quartiles {np.percentile(levels, 25):.2f}, "
             f"{np.percentile(levels, 75):.2f}; data.AUTO_TARGET is {data.AUTO_TARGET}).", "",
             "| held-out source | auto ratio / true (mean, range) | PSNR, true ratio | PSNR, auto ratio | difference (dB) |",
             "| --- | --- | --- | --- | --- |"]
    for ratio in RATIOS:
        path = white_light_list(ratio, overrides)
        clips = data.open_list(path, cfg["data"])
        found = [data.auto_ratio(c.packed_raw, c.meta, cfg["data"], c.name) / c.meta["ratio"] for c in clips]
        true = measure(path, overrides)["network"]["psnr"]
        auto = measure(path, [*overrides, "data.ratio=auto", f"test.result_root={cfg['test']['result_root']}/auto_ratio"])["network"]["psnr"]
        lines.append(f"| ratio {ratio} | {np.mean(found):.2f} ({min(found):.2f}-{max(found):.2f}) | {true:.2f} | {auto:.2f} | "
                     f"{auto - true:+.2f} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------


def publish(key, table, figure_dir="figure"):
    Path(figure_dir).mkdir(parents=True, exist_ok=True)
    with atomic_output(Path(figure_dir) / f"{key}.md") as tmp:
        tmp.write_text(table)
    figures.update_documents(key, table)
    print(f"\n{key}\n{table}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compare", nargs="+", metavar="EXPERIMENT", help="held-out tables of these trained models")
    parser.add_argument("--short-clips", nargs="+", metavar="EXPERIMENT", help="short-clip tables of these trained models")
    parser.add_argument("--table", help="with --compare, --short-clips or --saturated: the key the table is published "
                                        "under (else `breadth`, `short_clips_compare`, `saturated_light`)")
    parser.add_argument("--views", nargs="+", type=int, metavar="COUNT",
                        help="held-out tables with these counts of test.self_ensemble views (published as `self_ensemble`)")
    parser.add_argument("--noise", action="store_true",
                        help="the held-out source at ratio 200 with less of each noise (published as `noise`)")
    parser.add_argument("--saturated", action="store_true",
                        help="a DNG under saturated LED light against LibRaw (published as `saturated_light`)")
    parser.add_argument("--auto-ratio", action="store_true",
                        help="the held-out source at the ratio chosen from its frames (published as `auto_ratio`)")
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="SECTION.KEY=VALUE")
    args = parser.parse_args(argv)
    if args.compare:
        return publish(args.table or "breadth", compare_table(args.compare, args.set))
    if args.short_clips:
        return publish(args.table or "short_clips_compare", short_clip_table(args.set, tuple(args.short_clips)))
    if args.views:
        return publish("self_ensemble", views_table(args.views, args.set))
    if args.noise:
        return publish("noise", noise_table(args.set))
    if args.saturated:
        key = args.table or "saturated_light"
        return publish(key, saturated_light_table(args.set, Path("figure") / f"{key}_sheet.png"))
    if args.auto_ratio:
        return publish("auto_ratio", auto_ratio_table(args.set))
    results = held_out_results(args.set)
    publish("generalisation", held_out_table(results))
    publish("anchor", anchor_table(results, args.set))
    publish("steady", steady_table(results, args.set))
    publish("short_clips", short_clip_table(args.set))
    publish("camera_raw", camera_raw_table(args.set))
    publish("saturated_light", saturated_light_table(args.set, Path("figure") / "saturated_light_sheet.png"))


if __name__ == "__main__":
    cli.run_script(main)
