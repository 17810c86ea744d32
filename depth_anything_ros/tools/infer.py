"""infer: depth for image files, folders and videos, offline, with the node's FrameProcessor.

For an image NAME.ext it writes to --out:
  NAME_depth.npy        float32 HxW at the image's size, what the node publishes on `depth`
                        (the model's relative output, see depth_type.DepthKind, or metres for a
                        metric model; NaN where the model saw nothing or beyond max_depth, +Inf
                        where DA3 sees sky)
  NAME_depth.png        uint16, depth = value * scale. Relative: the frame's largest finite depth is
                        65535 (scale per frame). Metres: millimetres, as the node's depth/mm
                        (scale 0.001). 0 = not seen / invalid / sky.
  NAME_depth.json       {"scale", "min", "max", "kind": "relative inverse depth", "relative depth" or
                        "metres", "depth_type": the model's (depth_type.DEPTH_KINDS), ...}
  NAME_colorized.png    bgr8, what the node publishes on `depth/colorized`
  NAME_confidence.npy   DA3 main series: float32 depth_conf at the image's size (depth/confidence)
  NAME_sky.png          DA3 Mono/Metric: mono8, 255 where the model reports sky (depth/sky)
For a video NAME.ext: NAME_side_by_side.mp4 (input | colorized, MPEG-4 Part 2 'mp4v', the input's
fps) and, with --save-npy, NAME_000000_depth.npy, ... per frame.
"""
from __future__ import annotations

import os

HELP = ('depth for images, folders of images and videos with the node\'s pipeline: per image '
        'NAME_depth.npy (float32), NAME_depth.png (uint16, depth = value * scale from '
        'NAME_depth.json) and NAME_colorized.png; per video a side-by-side NAME_side_by_side.mp4')
PNG_MAX = 65535


def add_arguments(parser):
    from ..core.params import in_groups
    from ..tool_support.intrinsics import add_intrinsics_option
    from ..tool_support.options import add_param_options
    add_param_options(parser, in_groups('engine', 'recipe', 'depth', 'color', 'smoothing'))
    add_intrinsics_option(parser)
    parser.add_argument('--out', required=True, metavar='DIR', help='output directory (created if missing)')
    parser.add_argument('--save-npy', action='store_true',
                        help='videos: also write each frame\'s float32 depth as NAME_NNNNNN_depth.npy')
    parser.add_argument('--max-frames', type=int, metavar='N', help='videos: stop after N frames')
    parser.add_argument('inputs', nargs='+', metavar='INPUT',
                        help='image files, directories (their images, sorted) or video files')
    parser.epilog = ('NAME_depth.png holds round(depth / scale), scale in NAME_depth.json: the relative output '
                     '(not metres) with the frame\'s largest value at 65535, or, in metres, millimetres; 0 means '
                     'not seen (or sky). DA3 models also give NAME_confidence.npy or NAME_sky.png. Temporal '
                     'smoothing applies to videos.')


def encode_png16(depth, metres: bool = False, kind: str = 'relative inverse depth'):
    """float depth -> (uint16 image, sidecar dict). Relative: the largest finite value becomes
    65535; metres: millimetres (REP 118, as depth/mm). Non-finite values (not seen, DA3's sky) are 0.
    `kind`: what relative values are, in words."""
    import numpy as np

    from ..core.pointcloud import to_millimetres
    finite = depth[np.isfinite(depth)]
    lo = float(finite.min()) if finite.size else None
    hi = float(finite.max()) if finite.size else None
    if metres:
        png, scale = to_millimetres(depth), 0.001
    else:
        # An all-zero/negative/NaN frame has no scale to speak of; 1.0 keeps value * scale = 0 true.
        scale = hi / PNG_MAX if hi is not None and hi > 0 else 1.0
        with np.errstate(invalid='ignore'):
            scaled = np.nan_to_num(depth.astype(np.float64) / scale, nan=0.0, posinf=0.0, neginf=0.0)
        png = np.rint(np.clip(scaled, 0, PNG_MAX)).astype(np.uint16)
    sidecar = {'scale': scale, 'min': lo, 'max': hi, 'kind': 'metres' if metres else kind,
               'decode': 'depth = png_value * scale; 0 = not seen (NaN), sky (+Inf) or <= 0',
               'height': int(depth.shape[0]), 'width': int(depth.shape[1])}
    return png, sidecar


def output_name(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def run(args) -> int:
    from ..tool_support.errors import CliError
    from ..tool_support.files import expand_inputs, prepare_out_dir
    from ..tool_support.options import processor_from_args
    if args.max_frames is not None and args.max_frames <= 0:
        raise CliError(f'--max-frames {args.max_frames}: must be positive')
    images, videos = expand_inputs(args.inputs)
    _check_unique_names(images + videos)
    prepare_out_dir(args.out)
    processor = processor_from_args(args)
    print(f'model: {processor.estimator.engine.describe()}; {processor.meaning()}')
    print(f'colorized: {processor.view_meaning()}')
    try:
        if images:
            _infer_images(images, processor, args.out, args.intrinsics)
        frames = sum(_infer_video(path, processor, args) for path in videos)
    except OSError as exc:  # e.g. the disk filled up; --out was writable at the start
        raise CliError(f"cannot write to '{args.out}': {exc}") from exc
    done = [f'{len(images)} image(s)'] + ([f'{len(videos)} video(s), {frames} frames'] if videos else [])
    print(f"wrote depth for {' and '.join(done)} to '{args.out}'")
    return 0


def _check_unique_names(paths) -> None:
    from ..tool_support.errors import CliError
    seen = {}
    for path in paths:
        name = output_name(path)
        if name in seen:
            raise CliError(f"'{seen[name]}' and '{path}' would both write {name}_*: "
                           f'rename one or run them with different --out')
        seen[name] = path


def _write(path: str, ok: bool) -> None:
    from ..tool_support.errors import CliError
    if not ok:
        raise CliError(f"cannot write '{path}'")


def _infer_images(images, processor, out, intrinsics=None) -> None:
    import json

    import cv2
    import numpy as np

    from ..tool_support.files import progress, read_frame
    from ..tool_support.intrinsics import camera_of
    sizes = set()
    for path in progress(images, desc='images', unit='img'):
        frame = read_frame(path)
        _note_size(processor, frame, sizes)
        # Images are unrelated to each other: no temporal smoothing across them.
        result = processor.process(frame, restart=True, camera=camera_of(intrinsics, frame))
        base = os.path.join(out, output_name(path))
        np.save(f'{base}_depth.npy', result.depth)
        png, sidecar = encode_png16(result.depth, result.metres,
                                    'relative inverse depth' if processor.kind.inverse else 'relative depth')
        sidecar.update(source=os.path.basename(path), depth_type=processor.depth_type)
        _write(f'{base}_depth.png', cv2.imwrite(f'{base}_depth.png', png))
        with open(f'{base}_depth.json', 'w') as f:
            json.dump(sidecar, f, indent=1)
        _write(f'{base}_colorized.png', cv2.imwrite(f'{base}_colorized.png', result.colorized))
        if result.confidence is not None:
            np.save(f'{base}_confidence.npy', result.confidence)
        if result.sky is not None:
            _write(f'{base}_sky.png', cv2.imwrite(f'{base}_sky.png', result.sky))


def _note_size(processor, frame, sizes: set) -> None:
    """Print, once per image size, how such images go into a DA3 model that is not of their size."""
    size = (frame.height, frame.width)
    if size not in sizes:
        sizes.add(size)
        note = processor.estimator.input_note(*size)
        if note:
            print(note)


def _infer_video(path, processor, args) -> int:
    """Side-by-side MP4 (and per-frame npy); returns the number of frames written."""
    import cv2
    import numpy as np

    from ..tool_support.errors import CliError
    from ..core.image_codec import Frame
    from ..tool_support.files import progress
    from ..tool_support.intrinsics import camera_of
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise CliError(f"cannot read video '{path}'")
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0  # 0 for some containers
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))  # an estimate: only for the progress bar
    if args.max_frames:
        total = min(total, args.max_frames) if total > 0 else args.max_frames
    name = output_name(path)
    video_path = os.path.join(args.out, f'{name}_side_by_side.mp4')
    writer, count = None, 0
    try:
        for bgr in progress(_frames(capture, args.max_frames), total=total if total > 0 else None,
                            desc=name, unit='frame'):
            frame = Frame('bgr8', bgr, bgr.shape[0], bgr.shape[1])
            result = processor.process(frame, camera=camera_of(args.intrinsics, frame))
            if writer is None:
                _note_size(processor, frame, set())
                size = (bgr.shape[1] * 2, bgr.shape[0])
                writer = cv2.VideoWriter(video_path, cv2.VideoWriter_fourcc(*'mp4v'), fps, size)
                if not writer.isOpened():
                    raise CliError(f"cannot write '{video_path}' ({size[0]}x{size[1]} mp4v)")
            writer.write(np.hstack([bgr, result.colorized]))
            if args.save_npy:
                np.save(os.path.join(args.out, f'{name}_{count:06d}_depth.npy'), result.depth)
            count += 1
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    if count == 0:
        raise CliError(f"cannot read video '{path}': no frames decoded")
    return count


def _frames(capture, max_frames):
    count = 0
    while not max_frames or count < max_frames:
        ok, bgr = capture.read()
        if not ok:
            return
        yield bgr
        count += 1
