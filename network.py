"""The 3D U-Net (plain or with residual blocks) and the per-frame GAN discriminator.

    python network.py [--config FILE] [--set model.depth=4 ...]   prints the configured model

Input: packed Bayer video (batch, frames, H/2, W/2, 4). Output: sRGB (batch, frames, H, W, 3).
Every level has two 3x3x3 convolutions with leaky ReLU 0.2; the U-Net pools and up-samples each
frame on its own (2x2), never in time; before each convolution, time is padded by repeating the
first and last frame (model.time_padding `replicate`), so a 1-frame clip is seen as a still scene
rather than a frame between black ones (the original padded with zeros: `zeros`); the head is a 1x1x1 convolution to 12 channels followed by
depth-to-space per frame. Sizes that are not multiples of 2**depth work: pooling rounds up and
each up-sampled map is cropped to its skip connection, as the original did.
"""
import argparse
import math
from pathlib import Path

import config  # before Keras: it makes TensorFlow load without its start-up lines
import h5py
import keras
import numpy as np
from keras import layers, ops

import cli
from atomic import atomic_output

class CropToMatch(layers.Layer):
    """Crop (B, F, H, W, C) to the height and width of a reference tensor."""

    def call(self, x, reference):
        shape = ops.shape(reference)
        return x[:, :, :shape[2], :shape[3], :]

    def compute_output_shape(self, x_shape, reference_shape):
        return x_shape[:2] + reference_shape[2:4] + x_shape[4:]


class DepthToSpace(layers.Layer):
    """(B, F, h, w, 4C) -> (B, F, 2h, 2w, C) per frame, in tf.nn.depth_to_space's channel order."""

    def call(self, x):
        x = ops.cast(x, self.compute_dtype)
        batch, frames, height, width, channels = ops.shape(x)
        x = ops.reshape(x, (batch, frames, height, width, 2, 2, channels // 4))
        x = ops.transpose(x, (0, 1, 2, 4, 3, 5, 6))
        return ops.reshape(x, (batch, frames, 2 * height, 2 * width, channels // 4))

    def compute_output_shape(self, shape):
        double = lambda n: None if n is None else 2 * n  # noqa: E731
        return (shape[0], shape[1], double(shape[2]), double(shape[3]), shape[4] // 4)


class ReplicateTimePad(layers.Layer):
    """Pad (B, F, H, W, C) with `frames` copies of the first and last frame, and with zeros in space
    by `pixels`: what a "valid" convolution needs to return the size a "same" one would.

    Its gradient is written out: cut the border, fold the copies' gradients back onto the end
    frames. The one TensorFlow derives from the slices and the concatenation builds a zero tensor
    the size of the clip for every slice, a large share of a training step (lab/benchmark.py's
    training section measures the step)."""

    def __init__(self, frames, pixels, **kwargs):
        super().__init__(**kwargs)
        self.frames, self.pixels = frames, pixels

    def call(self, x):
        frames, p = self.frames, self.pixels

        @ops.custom_gradient
        def pad(x):
            def grad(upstream):
                height, width = ops.shape(upstream)[2], ops.shape(upstream)[3]
                inner = upstream[:, :, p:height - p, p:width - p]
                before = ops.sum(inner[:, :frames], axis=1, keepdims=True)
                after = ops.sum(inner[:, ops.shape(inner)[1] - frames:], axis=1, keepdims=True)
                own = inner[:, frames:ops.shape(inner)[1] - frames]
                # Two steps, so that a 1-frame clip, whose first frame is its last, gets both.
                own = ops.concatenate([own[:, :1] + before, own[:, 1:]], axis=1)
                return ops.concatenate([own[:, :-1], own[:, -1:] + after], axis=1)

            padded = ops.concatenate([x[:, :1]] * frames + [x] + [x[:, -1:]] * frames, axis=1)
            return ops.pad(padded, [[0, 0], [0, 0], [p, p], [p, p], [0, 0]]), grad
        return pad(x)

    def compute_output_shape(self, shape):
        grow = lambda n, by: None if n is None else n + 2 * by  # noqa: E731
        return (shape[0], grow(shape[1], self.frames), grow(shape[2], self.pixels), grow(shape[3], self.pixels), shape[4])


def _conv(x, channels, kernel, name, dtype, time_padding="zeros"):
    if time_padding == "replicate" and kernel[0] > 1:
        x = ReplicateTimePad(kernel[0] // 2, kernel[1] // 2, name=f"{name}_pad", dtype=dtype)(x)
        return layers.Conv3D(channels, kernel, padding="valid", name=name, dtype=dtype)(x)
    return layers.Conv3D(channels, kernel, padding="same", name=name, dtype=dtype)(x)


def _lrelu(x, name, dtype):
    return layers.LeakyReLU(config.LEAKY_SLOPE, name=name, dtype=dtype)(x)


def conv_pair(x, channels, kernel, name, dtype, time_padding):
    x = _lrelu(_conv(x, channels, kernel, f"{name}_conv1", dtype, time_padding), f"{name}_act1", dtype)
    return _lrelu(_conv(x, channels, kernel, f"{name}_conv2", dtype, time_padding), f"{name}_act2", dtype)


def residual_block(x, channels, kernel, name, dtype, time_padding):
    """conv + lrelu, conv, add the (projected) input, lrelu."""
    shortcut = x if x.shape[-1] == channels else _conv(x, channels, (1, 1, 1), f"{name}_project", dtype)
    y = _lrelu(_conv(x, channels, kernel, f"{name}_conv1", dtype, time_padding), f"{name}_act1", dtype)
    y = _conv(y, channels, kernel, f"{name}_conv2", dtype, time_padding)
    return _lrelu(layers.Add(name=f"{name}_add", dtype=dtype)([y, shortcut]), f"{name}_act2", dtype)


BF16_FLAGS = {"amx_bf16", "avx512_bf16"}  # CPU instructions that run bfloat16 natively


def bf16_hardware():
    """Why this machine runs bfloat16 natively, or None: a GPU of compute capability 8.0 or more
    (Ampere on), or a CPU with AMX-BF16 or AVX512-BF16 under TensorFlow, whose oneDNN kernels use
    them. Elsewhere bf16 is emulated, ~5x slower: XLA's CPU convolutions on JAX took twice as long
    in bf16 as in float32 on an AVX512-BF16 CPU."""
    for name, capability in _gpus():
        if capability >= (8, 0):
            return f"GPU {name} runs bf16 natively"
    if keras.backend.backend() != "tensorflow":
        return None
    found = sorted(cpu_info()[1] & BF16_FLAGS)
    return f"CPU flags {' and '.join(found)}" if found else None


def machine():
    """The hardware that runs this process, in words: its GPUs, else its CPU model and bf16 flags."""
    gpus = [name for name, _ in _gpus()]
    if gpus:
        return ", ".join(gpus)
    model, flags = cpu_info()
    return f"{model or 'CPU'}, CPU flags: {', '.join(sorted(flags & BF16_FLAGS)) or 'no bf16'}"


def cpu_info():
    """(model name or None, set of flags) of this machine's CPU, from /proc/cpuinfo."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    lines = cpuinfo.splitlines()
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), None)
    return model, {word for line in lines if line.startswith("flags") for word in line.split(":", 1)[1].split()}


def _gpus():
    """(name, (major, minor) compute capability) of each GPU that Keras' backend sees."""
    if keras.backend.backend() == "jax":
        import jax

        return [(gpu.device_kind, tuple(int(part) for part in getattr(gpu, "compute_capability", "0.0").split(".")))
                for gpu in jax.devices() if gpu.platform == "gpu"]
    import tensorflow as tf

    details = [tf.config.experimental.get_device_details(gpu) for gpu in tf.config.list_physical_devices("GPU")]
    return [(d.get("device_name", "GPU"), d.get("compute_capability", (0, 0))) for d in details]


def resolve_precision(model_cfg):
    """(Keras dtype policy, why): model.precision, with `auto` settled by the hardware."""
    if model_cfg["precision"] != "auto":
        return model_cfg["precision"], "model.precision in the configuration"
    reason = bf16_hardware()
    if reason:
        return "mixed_bfloat16", f"auto: {reason}"
    return "float32", f"auto: no GPU or CPU bf16 instructions that Keras' {keras.backend.backend()} backend uses here (bf16 would be emulated, slower)"


def dtype_policy(model_cfg):
    return resolve_precision(model_cfg)[0]


def build_unet(model_cfg, input_shape=(None, None, None, 4)):
    """The generator: a Keras functional model for any batch, frame count and size (or for the
    given (frames, H/2, W/2, 4), which gives every layer a static shape: see forward_flops)."""
    depth, base = model_cfg["depth"], model_cfg["base_channels"]
    kernel, padding = (model_cfg["temporal_kernel"], 3, 3), model_cfg["time_padding"]
    dtype = dtype_policy(model_cfg)
    packed_raw = keras.Input(input_shape, name="packed_raw")
    x, skips = packed_raw, []
    for level in range(depth + 1):
        block = residual_block if model_cfg["resnet"] and level > 0 else conv_pair
        x = block(x, base * 2**level, kernel, f"down{level}", dtype, padding)
        if level < depth:
            skips.append(x)
            x = layers.MaxPooling3D((1, 2, 2), padding="same", name=f"pool{level}", dtype=dtype)(x)
    for level in reversed(range(depth)):
        channels = base * 2**level
        up = layers.Conv3DTranspose(channels, (1, 2, 2), strides=(1, 2, 2), use_bias=False,
                                    kernel_initializer=keras.initializers.RandomNormal(stddev=0.02),
                                    name=f"up{level}", dtype=dtype)(x)
        up = CropToMatch(name=f"crop{level}", dtype=dtype)(up, skips[level])
        x = layers.Concatenate(name=f"concat{level}", dtype=dtype)([up, skips[level]])
        block = residual_block if model_cfg["resnet"] else conv_pair
        x = block(x, channels, kernel, f"dec{level}", dtype, padding)
    x = _conv(x, 12, (1, 1, 1), "head", dtype)
    rgb = DepthToSpace(name="rgb", dtype="float32")(x)
    return keras.Model(packed_raw, rgb, name="resnet_unet" if model_cfg["resnet"] else "unet")


def size_multiple(model):
    """The packed sizes that the U-Net pools evenly at every level: 2**depth."""
    return 2 ** sum(isinstance(layer, layers.MaxPooling3D) for layer in model.layers)


def weights_architecture(path):
    """What a U-Net weights file says of the model that wrote it, read from its kernels' shapes:
    {base_channels, depth, temporal_kernel, resnet}, or {} if it holds no U-Net. For an error that
    names what differs when no config.yaml lies beside the weights."""
    kernels = []
    try:
        with h5py.File(path, "r") as weights:
            weights.visititems(lambda _, item: kernels.append(item.shape)
                               if isinstance(item, h5py.Dataset) and item.ndim == 5 else None)
    except OSError:  # not an HDF5 file: Keras' own reason says more
        return {}
    first = [k for k in kernels if k[1:4] == (3, 3, 4)]  # (time, 3, 3, in, out): the packed input's conv
    if not first:
        return {}
    base = first[0][4]
    return {"base_channels": base, "depth": round(math.log2(max(k[4] for k in kernels) / base)),
            "temporal_kernel": first[0][0], "resnet": sum(k[:3] == (1, 1, 1) for k in kernels) > 1}


def load_weights(model, model_cfg, path, saved_model_cfg=None):
    """Load U-Net weights into `model`. A misfit names each setting that differs from the model that
    wrote them: `saved_model_cfg` (e.g. the config.yaml beside them), else what their kernels' shapes
    say, else Keras' own reason."""
    try:  # cut short (a copy that stopped) or not weights at all: not the model's fault
        h5py.File(path, "r").close()
    except OSError as error:
        raise ValueError(f"{path}: not a readable weights file, an HDF5 .weights.h5 as train.py saves ({error}); "
                         "is it complete?") from None
    try:
        model.load_weights(path)
    except (ValueError, OSError) as error:
        saved = saved_model_cfg or weights_architecture(path)
        differs = [f"model.{key}: checkpoint {saved[key]!r}, configured {value!r}"
                   for key, value in model_cfg.items() if key in saved and saved[key] != value]
        reason = "; ".join(differs) or str(error).strip().splitlines()[-1]
        raise ValueError(f"{path} does not fit the configured model ({reason})") from None


def grow_to_resnet(generator, model_cfg, path):
    """A plain U-Net's weights in the ResNet U-Net of the same size, computing the same function:
    every convolution keeps its kernel and each residual block's projection starts at zero, so the
    block's lrelu(conv2(lrelu(conv1(x))) + projection(x)) is the conv pair it replaces. Training
    then adds the shortcuts to what the plain network has learnt."""
    plain_cfg = {**model_cfg, "resnet": False}
    plain = build_unet(plain_cfg)
    load_weights(plain, plain_cfg, path)
    for layer in generator.layers:
        if layer.name.endswith("_project"):
            layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
        elif layer.weights:
            layer.set_weights(plain.get_layer(layer.name).get_weights())


def collapse_to_per_frame(generator, model_cfg, path):
    """A 3D U-Net's weights in the per-frame U-Net (temporal_kernel 1), computing what the 3D one
    computes on a single frame: its replicated time padding shows every layer a still clip, on
    which each kernel's taps in time all read the same frame, so their sum is the 2D kernel."""
    source_cfg = {**model_cfg, "temporal_kernel": weights_architecture(path)["temporal_kernel"]}
    source = build_unet(source_cfg)
    load_weights(source, source_cfg, path)
    for layer in generator.layers:
        if layer.weights:
            layer.set_weights([w.sum(axis=0, keepdims=True) if w.ndim == 5 else w
                               for w in source.get_layer(layer.name).get_weights()])


def load_initial_weights(generator, model_cfg, path):
    """Fine-tuning: the generator starts from saved weights (BackupAndRestore, if resuming, then
    puts back the interrupted run's own). A plain U-Net's weights start a ResNet U-Net of the same
    size as the same function (grow_to_resnet); a 3D U-Net's start the per-frame U-Net as the
    function it computes on single frames (collapse_to_per_frame)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"train.init_weights: {path}: no such weights file")
    try:
        saved = weights_architecture(path)
        if model_cfg["resnet"] and saved.get("resnet") is False:
            grow_to_resnet(generator, model_cfg, path)
        elif model_cfg["temporal_kernel"] == 1 and saved.get("temporal_kernel", 1) > 1:
            collapse_to_per_frame(generator, model_cfg, path)
        else:
            load_weights(generator, model_cfg, path)
    except ValueError as error:
        raise ValueError(f"train.init_weights: {error}") from None


def build_discriminator(gan_cfg, frame_height, frame_width, dtype="float32"):
    """Per-frame 2D discriminator on (N, H, W, 3) frames -> (N, 1) raw logits (no activation)."""
    frames = keras.Input((frame_height, frame_width, 3), name="rgb_frames")
    x = frames
    for block, channels in enumerate(gan_cfg["channels"]):
        for i in (1, 2):
            x = layers.Conv2D(channels, 3, padding="same", use_bias=False, name=f"d{block}_conv{i}", dtype=dtype)(x)
            x = layers.BatchNormalization(name=f"d{block}_bn{i}", dtype=dtype)(x)
            x = layers.LeakyReLU(config.LEAKY_SLOPE, name=f"d{block}_act{i}", dtype=dtype)(x)
        x = layers.Conv2D(channels, 3, strides=2, padding="same", name=f"d{block}_down", dtype=dtype)(x)
        x = layers.LeakyReLU(config.LEAKY_SLOPE, name=f"d{block}_act_down", dtype=dtype)(x)
    x = layers.Flatten(name="flatten", dtype=dtype)(x)
    for i, units in enumerate(gan_cfg["dense_units"]):
        x = layers.LeakyReLU(config.LEAKY_SLOPE, name=f"dense{i}_act", dtype=dtype)(
            layers.Dense(units, name=f"dense{i}", dtype=dtype)(x))
    logit = layers.Dense(1, name="logit", dtype="float32")(x)
    return keras.Model(frames, logit, name="discriminator")


def forward_flops(model_cfg, frames, height, width):
    """Floating-point operations (2 per multiply-add) of the convolutions of one forward pass over
    a (frames, height, width, 4) packed clip; activations, pooling and bias adds are left out.
    A training step (forward, then gradients of activations and weights) costs about 3 times this."""
    model = build_unet(model_cfg, (frames, height, width, 4))
    total = 0
    for layer in model.layers:
        if isinstance(layer, (layers.Conv3D, layers.Conv3DTranspose)):
            in_channels = layer.input.shape[-1]
            # A convolution does one kernel's work per output voxel; a transposed one per input voxel.
            transposed = isinstance(layer, layers.Conv3DTranspose)
            voxels = layer.input.shape[1:4] if transposed else layer.output.shape[1:4]
            kernel = layer.kernel_size[0] * layer.kernel_size[1] * layer.kernel_size[2]
            total += 2 * kernel * in_channels * layer.filters * voxels[0] * voxels[1] * voxels[2]
    return total


def store_half(path):
    """Rewrite a weights file with every float array stored as float16: half the bytes on disk and
    in every clone of the repository for a shipped model. Keras loads them into the float32
    variables as they are (the model computes as before, each weight rounded to 11 bits)."""
    path = Path(path)
    if not h5py.is_hdf5(path):
        raise ValueError(f"{path}: not an HDF5 weights file")
    with atomic_output(path) as tmp, h5py.File(path, "r") as source, h5py.File(tmp, "w") as target:
        target.attrs.update(source.attrs)

        def copy(name, item):  # a new file: HDF5 does not give back the space of a deleted array
            if isinstance(item, h5py.Group):
                target.require_group(name).attrs.update(item.attrs)
                return
            values = item[()]
            half = values.dtype.kind == "f"
            target.create_dataset(name, data=values.astype(np.float16) if half else values).attrs.update(item.attrs)
        source.visititems(copy)
    print(f"{path}: weights stored as float16 ({path.stat().st_size / 2**20:.1f} MiB)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store-half", metavar="WEIGHTS", help="rewrite this weights file in float16 (for shipping)")
    cli.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.store_half:
        return store_half(args.store_half)
    cfg = cli.from_args(args)
    build_unet(cfg["model"]).summary(line_length=110)


if __name__ == "__main__":
    cli.run_script(main)
