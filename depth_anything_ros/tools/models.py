"""models: the known Depth Anything V2 and 3 models (models/models.yaml): list, fetch, path."""
from __future__ import annotations

import sys

HELP = ('the known Depth Anything V2 and 3 models: `list` them (file, input, engine, licence, depth kind'
        '), `fetch NAME` into the cache with checksum, `path NAME` of a downloaded one')


def add_arguments(parser):
    parser.add_argument('--catalog', help='models.yaml to read (default: the installed one)')
    sub = parser.add_subparsers(dest='models_command', required=True, metavar='ACTION')
    sub.add_parser('list', help='print every known model')
    fetch = sub.add_parser('fetch', help='download a model into the cache (or --dest), checking its sha256')
    fetch.add_argument('name')
    fetch.add_argument('--dest', help='directory to download into (default: <cache>/models)')
    fetch.add_argument('--url', help='download from this URL instead (a mirror); the checksum still applies')
    fetch.add_argument('--timeout', type=float, default=30.0, help='network timeout in seconds (default 30)')
    fetch.add_argument('--force', action='store_true', help='download again even if the file is there')
    fetch.add_argument('--no-progress', action='store_true', help='no progress bar')
    path = sub.add_parser('path', help='print where a downloaded model is (exit 1 if it is not there)')
    path.add_argument('name')
    path.add_argument('--dest', help='directory it was downloaded into (default: <cache>/models)')


def run(args) -> int:
    from ..core.model_catalog import catalog_path, load_catalog
    from ..tool_support import download
    from ..tool_support.errors import CliError
    try:
        catalog = load_catalog(args.catalog)
    except (OSError, KeyError, TypeError, ValueError) as exc:  # yaml errors are ValueErrors
        raise CliError(f'cannot read the model catalog {args.catalog or catalog_path()}: {exc}') from exc
    if args.models_command == 'list':
        _print_table(catalog.models)
        return 0
    try:
        entry = catalog.find(args.name)
    except KeyError as exc:
        raise CliError(exc.args[0]) from exc
    if args.models_command == 'path':
        import os
        path = download.cached_path(entry, args.dest)
        if os.path.isfile(path):
            print(path)
            return 0
        print(f'{entry.name} is not downloaded (expected at {path}): '
              f'depth-anything-ros models fetch {entry.name}', file=sys.stderr)
        return 1
    try:
        path, digest, how = download.fetch(entry, args.dest, args.url, args.timeout,
                                           progress=not args.no_progress, force=args.force)
    except download.FetchError as exc:
        print(f'depth-anything-ros models fetch: {exc}', file=sys.stderr)
        return 1
    except OSError as exc:  # the destination, not the network
        raise CliError(f'cannot write into {download.models_dir(args.dest)}: {exc.strerror or exc}') from exc
    checked = 'checksum verified' if entry.sha256 else 'models.yaml gives no checksum'
    print(f"{'downloaded' if how == 'downloaded' else 'already there'}: {path} (sha256 {digest}, {checked})")
    return 0


def _print_table(entries):
    rows = [('NAME', 'FILE', 'INPUT', 'ENGINE', 'LICENCE', 'DEPTH')]
    rows += [(e.name, e.file, e.input_text, e.engine or 'export first', e.licence, e.depth_text) for e in entries]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print('  '.join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
