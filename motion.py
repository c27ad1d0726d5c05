"""Footage -> clips of the configured size: videos scaled to cover the frame and centre-cropped,
still photos filmed as moving scenes (a smooth pan and zoom, or layers that move on their own)."""
import cv2
import numpy as np


def resize_to_cover(image, height, width):
    """Scale an image so that it covers height x width, keeping its aspect ratio."""
    scale = max(height / image.shape[0], width / image.shape[1])
    size = (max(width, round(image.shape[1] * scale)), max(height, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def fit_video(frames, height, width):
    """Resize to cover and centre-crop every frame to height x width."""
    out = np.empty((len(frames), height, width, 3), np.uint8)
    for f, frame in enumerate(frames):
        covered = resize_to_cover(frame, height, width)
        top, left = (covered.shape[0] - height) // 2, (covered.shape[1] - width) // 2
        out[f] = covered[top:top + height, left:left + width]
    return out


def pan_zoom_clip(image, frames, height, width, rng):
    """A still image moved by a smooth random pan and zoom into (frames, height, width, 3) uint8."""
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    image = resize_to_cover(image[..., :3], height, width)
    zoom_start, zoom_end = rng.uniform(1.0, 1.5, size=2)
    centre_start, centre_end = (_random_centre(image.shape, height, width, zoom, rng)
                                for zoom in (zoom_start, zoom_end))
    out = np.empty((frames, height, width, 3), np.uint8)
    for f in range(frames):
        t = 0.5 - 0.5 * np.cos(np.pi * f / max(frames - 1, 1))  # eases in and out: no jerk
        zoom = zoom_start + t * (zoom_end - zoom_start)
        cx, cy = centre_start + t * (centre_end - centre_start)
        # Output pixel (u, v) samples the image at (cx + (u - W/2) / zoom, cy + (v - H/2) / zoom).
        to_image = np.array([[1 / zoom, 0, cx - width / 2 / zoom], [0, 1 / zoom, cy - height / 2 / zoom]])
        out[f] = cv2.warpAffine(image, to_image, (width, height),
                                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)
    return out


def _smooth_noise(frames, amplitude, rng):
    """(frames, 2) of camera shake: a random walk smoothed over ~5 frames, `amplitude` pixels."""
    walk = rng.normal(0, 1, (frames + 8, 2)).cumsum(axis=0)
    walk = np.stack([np.convolve(walk[:, i], np.ones(9) / 9, mode="valid") for i in (0, 1)], axis=1)
    walk -= walk.mean(axis=0)
    return amplitude * walk / max(np.abs(walk).max(), 1e-9)


def _similarity(centre, angle, scale, target):
    """2x3 affine that maps `centre` of a source to `target` of the output, rotated and scaled."""
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, scale)
    matrix[:, 2] += np.asarray(target, np.float64) - centre
    return matrix


def _overlay_patch(image, height, rng):
    """A patch of another photo, 0.25 to 0.5 of the frame's height, with a soft-edged elliptical or
    rectangular mask: an object that moves over the background."""
    side = int(height * rng.uniform(0.25, 0.5))
    patch_h, patch_w = side, int(side * rng.uniform(0.6, 1.6))
    image = resize_to_cover(image, patch_h * 2, patch_w * 2)
    top, left = rng.integers(0, image.shape[0] - patch_h + 1), rng.integers(0, image.shape[1] - patch_w + 1)
    patch = image[top:top + patch_h, left:left + patch_w]
    mask = np.zeros((patch_h, patch_w), np.float32)
    if rng.random() < 0.5:
        cv2.ellipse(mask, (patch_w // 2, patch_h // 2), (patch_w // 2 - 2, patch_h // 2 - 2), 0, 0, 360, 1.0, -1)
    else:
        mask[2:-2, 2:-2] = 1.0
    return patch, cv2.GaussianBlur(mask, (0, 0), 1.5)


def layered_clip(image, overlay_images, frames, height, width, rng):
    """A still photo filmed as a moving scene: the background pans, zooms, rotates and shakes at a
    varying speed, and patches of `overlay_images` move across it on paths of their own, each in
    front of the ones before (occlusion). (frames, height, width, 3) uint8."""
    rgb = lambda im: np.repeat(im[..., None], 3, axis=-1) if im.ndim == 2 else im[..., :3]  # noqa: E731
    background = resize_to_cover(rgb(image), int(height * 1.2), int(width * 1.2))
    zooms, angles = rng.uniform(1.0, 1.5, size=2), rng.uniform(-8, 8, size=2)
    centres = [_random_centre(background.shape, height, width, z, rng) for z in zooms]
    pace = rng.uniform(0.6, 1.6)  # < 1 starts fast and slows down, > 1 the opposite
    shake = _smooth_noise(frames, rng.uniform(0, 3), rng)
    layers = []
    for overlay in overlay_images:
        patch, mask = _overlay_patch(rgb(overlay), height, rng)
        ends = np.stack([rng.uniform([0, 0], [width, height]) for _ in range(2)])
        layers.append((patch, mask, ends, rng.uniform(-30, 30, size=2), rng.uniform(0.8, 1.25, size=2)))
    out = np.empty((frames, height, width, 3), np.uint8)
    for f in range(frames):
        t = (0.5 - 0.5 * np.cos(np.pi * f / max(frames - 1, 1))) ** pace
        mix = lambda pair: pair[0] + t * (pair[1] - pair[0])  # noqa: E731
        centre = mix(centres) + shake[f]
        to_frame = _similarity(centre, mix(angles), mix(zooms), (width / 2, height / 2))
        frame = cv2.warpAffine(background, to_frame, (width, height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT).astype(np.float32)
        for patch, mask, ends, angles_l, scales in layers:
            centre_l = np.array(patch.shape[1::-1]) / 2
            to_frame = _similarity(centre_l, mix(angles_l), mix(scales), mix(ends))
            moved = cv2.warpAffine(patch, to_frame, (width, height), flags=cv2.INTER_LINEAR).astype(np.float32)
            alpha = cv2.warpAffine(mask, to_frame, (width, height), flags=cv2.INTER_LINEAR)[..., None]
            frame = frame * (1 - alpha) + moved * alpha
        out[f] = np.clip(frame + 0.5, 0, 255).astype(np.uint8)
    return out


def _random_centre(shape, height, width, zoom, rng):
    half_h, half_w = height / 2 / zoom, width / 2 / zoom
    return np.array([rng.uniform(half_w, shape[1] - half_w), rng.uniform(half_h, shape[0] - half_h)])
