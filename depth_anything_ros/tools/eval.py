"""eval: a model against ground-truth depth (NYU, KITTI, TUM, SUN RGB-D, or an index CSV)."""
from __future__ import annotations

import os

HELP = ('evaluate a model against ground-truth depth with the standard monocular metrics '
        '(AbsRel, SqRel, RMSE, RMSE log, log10, delta < 1.25^k); relative models are aligned '
        'to the ground truth by least-squares scale and shift first, in disparity for DA-V2\'s inverse '
        'depth, in depth for DA3\'s')


def add_arguments(parser):
    from ..core.evaluation import CROPS, FORMATS
    from ..core.params import in_groups
    from ..tool_support.intrinsics import add_intrinsics_option
    from ..tool_support.options import add_param_options
    add_param_options(parser, in_groups('engine', 'recipe') + ('depth_type',))
    parser.add_argument('--index', metavar='CSV',
                        help='index CSV with columns dataset,rgb,depth,decode (decode: mm, tum5000, '
                             'sun_bitshift_mm, kitti256); paths relative to the CSV\'s folder')
    parser.add_argument('--dataset', action='append', metavar='NAME',
                        help='with --index: only rows of this dataset (repeatable)')
    parser.add_argument('--format', choices=sorted(FORMATS),
                        help='with --rgb/--depth: nyu (uint16 mm), kitti (uint16 / 256), '
                             'tum (uint16 / 5000), sun (SUN RGB-D bit-rotated mm), mm')
    parser.add_argument('--rgb', nargs='+', metavar='IMAGE', help='RGB images')
    parser.add_argument('--depth', nargs='+', metavar='PNG',
                        help='their ground-truth depth PNGs, in the same order')
    parser.add_argument('--crop', default='auto', choices=('auto',) + CROPS,
                        help='pixels that count: auto follows the dataset (KITTI: kitti_garg, NYU: '
                             'nyu_eigen = rows 45:471, cols 41:601 of 480x640, others: none)')
    parser.add_argument('--min-depth', type=float, default=1e-3, help='metres (default 1e-3)')
    parser.add_argument('--max-depth', type=float, default=None, dest='eval_max_depth',
                        help='metres; default follows the dataset (KITTI 80, NYU and others 10). Relative '
                             'output is aligned to the ground truth per image; metric output is used as is')
    parser.add_argument('--align-from-sparse', type=float, metavar='FRACTION',
                        help='relative models: also align each image to this random fraction of its valid '
                             'ground truth (e.g. 0.01 or 0.001, what a sparse depth sensor gives the node) '
                             'and report those metrics beside the full alignment')
    add_intrinsics_option(parser)
    parser.add_argument('--json', metavar='OUT', help='also write the per-image and mean results here')


def _samples(args) -> list:
    """[(display name, Sample)] from --index or --format/--rgb/--depth, every file checked."""
    from ..tool_support.errors import CliError
    from ..core.evaluation import FORMATS, EvaluationError, Sample, read_index
    if bool(args.index) == bool(args.rgb or args.depth):
        raise CliError('give either --index CSV or --format F --rgb IMAGE... --depth PNG...')
    if args.index:
        if not os.path.isfile(args.index):
            raise CliError(f"index '{args.index}' does not exist")
        try:
            samples = read_index(args.index)
        except EvaluationError as exc:
            raise CliError(str(exc)) from exc
        if args.dataset:
            samples = [s for s in samples if s.dataset in args.dataset]
            if not samples:
                raise CliError(f"index '{args.index}' has no rows of dataset {args.dataset}")
        root = os.path.dirname(os.path.abspath(args.index))
        named = [(os.path.relpath(s.rgb, root), s) for s in samples]
    else:
        if not args.format:
            raise CliError('--rgb/--depth need --format (how to decode the depth PNGs)')
        if not args.rgb or not args.depth or len(args.rgb) != len(args.depth):
            raise CliError(f'--rgb and --depth need the same number of files, '
                           f'got {len(args.rgb or [])} and {len(args.depth or [])}')
        named = [(rgb, Sample(args.format, rgb, depth, FORMATS[args.format]))
                 for rgb, depth in zip(args.rgb, args.depth)]
    for _, s in named:  # before loading the model: a typo should not cost a model load
        for path in (s.rgb, s.depth):
            if not os.path.isfile(path):
                raise CliError(f"file '{path}' does not exist")
    return named


def run(args) -> int:
    from ..tool_support.errors import CliError
    from ..core.evaluation import EvaluationError, evaluate, load_depth, protocol
    from ..core.depth_metrics import DEPTH_METRICS
    from ..tool_support.files import progress, read_frame
    from ..tool_support.intrinsics import camera_of
    from ..tool_support.options import config_from_args, processor_from_config
    cap = args.eval_max_depth
    if not 0 < args.min_depth < (float('inf') if cap is None else cap):
        raise CliError(f'need 0 < --min-depth < --max-depth, got {args.min_depth} and {cap}')
    if args.align_from_sparse is not None and not 0 < args.align_from_sparse <= 1:
        raise CliError(f'--align-from-sparse {args.align_from_sparse}: needs a fraction in (0, 1]')
    cfg = config_from_args(args)
    named = _samples(args)
    # Each dataset its own cap and crop unless the options say otherwise.
    settings_of = {}
    for _, s in named:
        max_depth, crop = protocol(s.dataset, s.decode)
        settings_of[s.dataset] = (max_depth if cap is None else cap,
                                  crop if args.crop == 'auto' else args.crop)
    for dataset, (max_depth, crop) in settings_of.items():
        if not args.min_depth < max_depth:
            raise CliError(f'need --min-depth < the max depth of {dataset} ({max_depth:g} m)')
        print(f'{dataset}: depth ({args.min_depth:g}, {max_depth:g}) m, crop {crop}')
    if args.json:
        folder = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(folder):
            raise CliError(f"--json '{args.json}': folder '{folder}' does not exist")
    processor = processor_from_config(cfg)
    depth_type = processor.depth_type
    if args.align_from_sparse is not None and processor.metric:
        raise CliError(f'--align-from-sparse needs a relative model ({depth_type} here)')
    print(f'model: {processor.estimator.engine.describe()}; {processor.meaning()}')
    if processor.kind.canonical and not args.intrinsics:
        print('no --intrinsics: DA3Metric\'s canonical depth is aligned as relative depth, not taken as metres')
    rows = []
    for name, sample in progress(named, desc='eval', unit='img'):
        try:
            gt = load_depth(sample.depth, sample.decode)
            frame = read_frame(sample.rgb)
            out = processor.process(frame, ('depth',), camera=camera_of(args.intrinsics, frame))
            max_depth, crop = settings_of[sample.dataset]
            result = evaluate(out.depth, gt, _comparison(processor, out), args.min_depth, max_depth, crop,
                              args.align_from_sparse)
        except EvaluationError as exc:
            raise CliError(str(exc)) from exc
        rows.append({'name': name, 'dataset': sample.dataset, 'rgb': sample.rgb,
                     'depth': sample.depth, 'decode': sample.decode, 'max_depth': max_depth,
                     'crop': crop, **result})
    # Means of per-image metrics (the usual NYU/KITTI reporting), skipping images with no valid pixel.
    mean = _mean(rows, DEPTH_METRICS)
    by_dataset = {d: _mean([r for r in rows if r['dataset'] == d], DEPTH_METRICS)
                  for d in dict.fromkeys(r['dataset'] for r in rows)}
    _print_table(rows, mean, by_dataset, DEPTH_METRICS)
    if args.align_from_sparse:
        sparse_rows = [{'name': r['name'], 'dataset': r['dataset'], 'valid_px': r['sparse']['samples'],
                        **r['sparse']} for r in rows]
        sparse_mean = _mean(sparse_rows, DEPTH_METRICS)
        sparse_by_dataset = {d: _mean([r for r in sparse_rows if r['dataset'] == d], DEPTH_METRICS)
                             for d in by_dataset}
        print(f'\naligned to {args.align_from_sparse:g} of the ground truth (robust fit; valid_px: pixels used)')
        _print_table(sparse_rows, sparse_mean, sparse_by_dataset, DEPTH_METRICS)
        refused = [r for r in sparse_rows if r['refused']]
        if refused:   # as the node would: no metres rather than wrong ones
            print(f'fit refused for {len(refused)} of {len(rows)} images (not in the means), e.g. '
                  f"{refused[0]['name']}: {refused[0]['refused']}")
        mean['sparse'], by_dataset = sparse_mean, {d: {**v, 'sparse': sparse_by_dataset[d]}
                                                   for d, v in by_dataset.items()}
    if args.json:
        settings = {'model': cfg['model_path'], 'engine': cfg['engine'], 'input_size': cfg['input_size'],
                    'depth_type': depth_type, 'min_depth': args.min_depth, 'max_depth': cap, 'crop': args.crop,
                    'align_from_sparse': args.align_from_sparse}
        recipe = processor.estimator.recipe
        settings['recipe'] = {'name': recipe.name, **recipe.settings}
        settings['alignment'] = ('none' if processor.metric and (args.intrinsics or not processor.kind.canonical)
                                 else 'least-squares scale and shift in '
                                 f"{'disparity' if processor.kind.inverse else 'depth'}, per image")
        _write_json(args.json, {'settings': settings, 'metrics': list(DEPTH_METRICS), 'images': rows,
                                'mean': mean, 'mean_by_dataset': by_dataset})
    skipped = sum(1 for r in rows if r['valid_px'] < 2)
    if skipped:
        print(f'warning: {skipped} image(s) had no valid ground-truth pixels and are not in the means')
    return 0


def _comparison(processor, out) -> str:
    """How evaluation.evaluate compares this output: as metres, or aligned in its own space."""
    if out.metres:
        return 'metric'
    return 'relative' if processor.kind.inverse else 'relative_depth'


def _mean(rows, keys) -> dict:
    import numpy as np
    usable = [r for r in rows if np.isfinite(r['abs_rel'])]
    out = {k: float(np.mean([r[k] for r in usable])) if usable else float('nan') for k in keys}
    out['images'] = len(usable)
    return out


def _print_table(rows, mean, by_dataset, keys) -> None:
    labels = [r['name'] for r in rows] + [f'mean {d}' for d in by_dataset]
    width = max(len(label) for label in labels)
    header = f"{'image':<{width}}  {'valid_px':>8}  " + '  '.join(f'{k:>8}' for k in keys)
    print(header)

    def line(label, values, count):
        return f'{label:<{width}}  {count:>8}  ' + '  '.join(f'{values[k]:8.4f}' for k in keys)
    for r in rows:
        print(line(r['name'], r, r['valid_px']))
    print('-' * len(header))
    if len(by_dataset) > 1:
        for dataset, values in by_dataset.items():
            print(line(f'mean {dataset}', values, f"{values['images']} img"))
    print(line('mean', mean, f"{mean['images']} img"))


def _write_json(path, data) -> None:
    import json
    import math

    from ..tool_support.errors import CliError

    def clean(value):  # strict JSON has no NaN: null instead
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value
    try:
        with open(path, 'w') as f:
            json.dump(clean(data), f, indent=1)
    except OSError as exc:
        raise CliError(f"cannot write --json '{path}': {exc}") from exc
