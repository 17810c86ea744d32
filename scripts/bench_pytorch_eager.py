"""`depth-anything-ros infer` against PyTorch eager on the same random-weight DA-V2, whole processes.

    .venv/bin/python scripts/bench_pytorch_eager.py --model M.onnx [--seed 0] [--rounds 3] IMAGE...

M.onnx is make-test-model's (Small architecture, fixed size, `--seed`): the peer builds the same
weights in PyTorch (torch_models/build.py) and runs the official `infer_image` recipe on each image
(BGR -> RGB, /255, float cubic resize to the model's size, ImageNet normalization, the network,
F.interpolate(align_corners=True) back to the image's size) and writes what `infer` writes for it:
the float32 depth (.npy) and a colorized PNG. Each round runs, in turn, `infer` with its defaults,
`infer --intra-op-threads <cores>` and the peer, each a fresh process; printed per run: wall seconds,
CPU seconds (user + system, all threads) and peak resident memory (MiB), then the medians and the
ratios to the peer. Speed only: random weights, the depth means nothing.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

RUNS = ('infer (defaults)', 'infer --intra-op-threads {cores}', 'PyTorch eager')


def peer(model_hw: tuple, seed: int, out: str, images: list) -> None:
    """The official infer_image with PyTorch, eagerly, image by image."""
    import cv2
    import torch

    from depth_anything_ros.torch_models.build import build_torch_model
    model = build_torch_model(tiny=False, seed=seed)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    for path in images:
        bgr = cv2.imread(path)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) / 255.0
        rgb = cv2.resize(rgb, (model_hw[1], model_hw[0]), interpolation=cv2.INTER_CUBIC)
        x = torch.from_numpy(np.ascontiguousarray(((rgb - mean) / std).transpose(2, 0, 1), np.float32))[None]
        with torch.no_grad():
            depth = model(pixel_values=x).predicted_depth[:, None]
            depth = torch.nn.functional.interpolate(depth, bgr.shape[:2], mode='bilinear', align_corners=True)
        depth = depth[0, 0].numpy()
        name = os.path.join(out, os.path.splitext(os.path.basename(path))[0])
        np.save(f'{name}_depth.npy', depth)
        gray = cv2.normalize(depth, None, 0, 255, cv2.NORM_MINMAX, cv2.CV_8U)
        cv2.imwrite(f'{name}_colorized.png', cv2.applyColorMap(gray, cv2.COLORMAP_INFERNO))


def measure(command: list) -> tuple:
    """(wall s, CPU s, peak RSS MiB) of one process run to its end."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, 'PYTHONPATH': repo + os.pathsep + os.environ.get('PYTHONPATH', '')}
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f'{command[:4]}... exited with {process.returncode}')
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', required=True, help="make-test-model's ONNX (Small architecture, fixed size)")
    parser.add_argument('--seed', type=int, default=0, help='the seed make-test-model used')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--peer-size', help=argparse.SUPPRESS)   # internal: run the peer
    parser.add_argument('--out', help=argparse.SUPPRESS)
    parser.add_argument('images', nargs='+')
    args = parser.parse_args()
    if args.peer_size:
        peer(tuple(int(v) for v in args.peer_size.split('x')), args.seed, args.out, args.images)
        return 0
    import onnxruntime
    shape = onnxruntime.InferenceSession(args.model, providers=['CPUExecutionProvider']).get_inputs()[0].shape
    cores = os.cpu_count()
    results = {run: [] for run in RUNS}
    for round_ in range(args.rounds):
        for run in RUNS:
            with tempfile.TemporaryDirectory() as out:
                infer = [sys.executable, '-m', 'depth_anything_ros.cli', 'infer', '--model', args.model, '--out', out]
                command = {RUNS[0]: infer, RUNS[1]: infer + ['--intra-op-threads', str(cores)],
                           RUNS[2]: [sys.executable, __file__, '--model', args.model, '--seed', str(args.seed),
                                     '--peer-size', f'{shape[2]}x{shape[3]}', '--out', out]}[run] + args.images
                results[run].append(measure(command))
            wall, cpu, rss = results[run][-1]
            print(f'round {round_ + 1}: {run.format(cores=cores):<32} wall {wall:6.2f} s  CPU {cpu:6.2f} s  '
                  f'peak {rss:5.0f} MiB', flush=True)
    print(f'\n{len(args.images)} images, model {shape[2]}x{shape[3]}, {cores} cores; medians of {args.rounds} rounds:')
    base = np.median(np.array(results[RUNS[2]]), axis=0)
    for run in RUNS:
        wall, cpu, rss = np.median(np.array(results[run]), axis=0)
        print(f'  {run.format(cores=cores):<32} wall {wall:6.2f} s  CPU {cpu:6.2f} s  peak {rss:5.0f} MiB   '
              f'ratios to PyTorch eager: wall {wall / base[0]:.2f}, CPU {cpu / base[1]:.2f}, peak {rss / base[2]:.2f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
