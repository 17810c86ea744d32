"""The official Depth Anything 3 monocular inference, end to end, as the reference of parity tests.

`official_inference` runs what `depth_anything_3.api.DepthAnything3.inference` runs for one image
and no camera poses (api.py: `_preprocess_inputs` -> `_prepare_model_inputs` -> `_run_model_forward`
-> `_convert_to_prediction`), with the package's own pieces: its `InputProcessor` (upper_bound_resize
to 504, sides rounded to multiples of 14, ImageNet normalisation), the network's own forward (which
fills Mono/Metric sky with the 99th percentile of the other pixels) and its `OutputProcessor` (sky
mask at 0.5). The API class itself is not imported: its module pulls in the exporters' dependencies
(trimesh, pycolmap, moviepy, evo). Two choices of ours, stated here and in the result:
- float32 throughout: `DepthAnything3.forward` wraps the network in autocast (bf16/fp16), a GPU
  speed setting; the exported ONNX is float32, and so is this reference;
- the official code gives maps at the network's input size and never resizes them back to the
  image: `resize_to_image` does, with the method a test names.
Metric depth: `metres` is the package's `apply_metric_scaling` (focal * depth / 300, focal the mean
of fx, fy) with the intrinsics the InputProcessor scaled to the network input.

torchvision: the InputProcessor uses torchvision.transforms' ToTensor and Normalize. PyPI's
torchvision is a CUDA build that cannot load beside the CPU torch here, and installing it breaks
transformers' image processors; without a working torchvision, `_torchvision_transforms` stands in
with the same two float32 operations (x / 255, then (x - mean) / std with the processor's own
constants), only while input_processor is imported.
"""
from __future__ import annotations

import contextlib
import sys
import types
from dataclasses import dataclass

import numpy as np

PROCESS_RES = 504
PROCESS_RES_METHOD = 'upper_bound_resize'   # DepthAnything3.inference's defaults
FILL_THRESHOLD = 0.3                          # da3.py _process_mono_sky_estimation: compute_sky_mask(.., 0.3)
MASK_THRESHOLD = 0.5                          # output_processor.py _extract_sky: sky >= 0.5


@dataclass
class OfficialResult:
    depth: np.ndarray              # (h, w) at the network's input size; Mono/Metric sky filled
    processed_hw: tuple            # the network's input size the InputProcessor chose
    pixel_values: np.ndarray       # (1, 3, h, w) what the network was given
    confidence: np.ndarray | None  # depth_conf (main series)
    sky: np.ndarray | None         # bool mask, Prediction.sky (score >= 0.5)
    sky_score: np.ndarray | None   # the sky head's raw output (fill uses score >= 0.3)
    intrinsics: np.ndarray | None  # 3x3 K scaled to processed_hw by the InputProcessor
    metres: np.ndarray | None      # apply_metric_scaling(depth, intrinsics), when K was given
    precision: str = 'float32 (the official API autocasts to bf16/fp16)'


def official_inference(net, rgb: np.ndarray, intrinsics: np.ndarray | None = None, seed: int = 0) -> OfficialResult:
    """The official single-image inference of `net` (a DepthAnything3Net) on an RGB uint8 image.

    seed: torch's RNG before the forward; the sky fill takes the percentile over a random 100000
    of the non-sky pixels when there are more (da3.py _process_mono_sky_estimation)."""
    import torch
    from depth_anything_3.utils.alignment import apply_metric_scaling
    from depth_anything_3.utils.io.output_processor import OutputProcessor
    processor = input_processor()
    ixts = None if intrinsics is None else np.asarray(intrinsics, np.float32)[None]
    imgs_cpu, _, ixt = processor([rgb], None, ixts, PROCESS_RES, PROCESS_RES_METHOD)   # api.py _preprocess_inputs
    imgs = imgs_cpu[None].float()                                                        # _prepare_model_inputs
    torch.manual_seed(seed)
    with torch.no_grad():
        raw = net(imgs, None, None, [], False, False, 'saddle_balanced')                # _run_model_forward
    prediction = OutputProcessor()(raw)                                                  # _convert_to_prediction
    metres = None
    if ixt is not None:
        metres = apply_metric_scaling(raw.depth.float(), ixt[None]).squeeze(0).numpy()[0]
    sky_score = raw.get('sky')
    return OfficialResult(
        depth=prediction.depth[0], processed_hw=tuple(imgs.shape[-2:]), pixel_values=imgs[0].numpy(),
        confidence=None if prediction.conf is None else prediction.conf[0],
        sky=None if prediction.sky is None else prediction.sky[0],
        sky_score=None if sky_score is None else sky_score[0, 0].numpy(),
        intrinsics=None if ixt is None else ixt[0].numpy(), metres=metres)


def resize_to_image(values: np.ndarray, image_hw: tuple, mode: str) -> np.ndarray:
    """A (h, w) map resized to the image (the official code does not): 'align_corners' (bilinear,
    corner pixels aligned: DA-V2's official upsampling), 'pixel_centres' (bilinear on pixel
    centres, as OpenCV's INTER_LINEAR) or 'nearest' (masks)."""
    import torch
    import torch.nn.functional as F
    grid = torch.from_numpy(np.ascontiguousarray(values, np.float32))[None, None]
    if mode == 'nearest':
        out = F.interpolate(grid, size=tuple(image_hw), mode='nearest')
    elif mode in ('align_corners', 'pixel_centres'):
        out = F.interpolate(grid, size=tuple(image_hw), mode='bilinear', align_corners=mode == 'align_corners')
    else:
        raise ValueError(f'unknown resize mode {mode!r}')
    return out[0, 0].numpy()


def input_processor():
    """The package's InputProcessor (imported with a stand-in torchvision where needed)."""
    if 'depth_anything_3.utils.io.input_processor' not in sys.modules:
        with _torchvision_transforms():
            import depth_anything_3.utils.io.input_processor  # noqa: F401
    return sys.modules['depth_anything_3.utils.io.input_processor'].InputProcessor()


@contextlib.contextmanager
def _torchvision_transforms():
    """torchvision.transforms as input_processor uses it: the real one if it imports, else
    ToTensor and Normalize as torchvision computes them, visible only during the import."""
    try:
        import torchvision.transforms  # noqa: F401
    except Exception:  # not installed, or a build that cannot load here (RuntimeError)
        for name in [m for m in sys.modules if m == 'torchvision' or m.startswith('torchvision.')]:
            del sys.modules[name]
    else:
        yield
        return
    import torch

    class ToTensor:
        def __call__(self, pic):   # PIL RGB uint8 -> float (3, H, W) / 255
            array = torch.from_numpy(np.array(pic, np.uint8, copy=True))
            return array.permute(2, 0, 1).contiguous().to(torch.get_default_dtype()).div(255)

    class Normalize:
        def __init__(self, mean, std):
            self.mean, self.std = mean, std

        def __call__(self, tensor):
            mean = torch.as_tensor(self.mean, dtype=tensor.dtype).view(-1, 1, 1)
            std = torch.as_tensor(self.std, dtype=tensor.dtype).view(-1, 1, 1)
            return tensor.clone().sub_(mean).div_(std)

    class CenterCrop:   # only for batches of several sizes; never one image
        def __init__(self, *args):
            raise NotImplementedError('CenterCrop: not needed for one image')

    transforms = types.ModuleType('torchvision.transforms')
    transforms.ToTensor, transforms.Normalize, transforms.CenterCrop = ToTensor, Normalize, CenterCrop
    package = types.ModuleType('torchvision')
    package.transforms = transforms
    sys.modules.update({'torchvision': package, 'torchvision.transforms': transforms})
    try:
        yield
    finally:
        del sys.modules['torchvision'], sys.modules['torchvision.transforms']
