"""The known models (models/models.yaml): list them, download one with its checksum, find it.

Downloads go to <cache>/models/<file> through a .part file renamed only when
the whole file arrived and its sha256 matches, so a cached file is always
complete. No ROS, no torch here.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import sys
from dataclasses import dataclass

from .paths import cache_dir, share_path
from .preprocess import Recipe

CHUNK = 1 << 20


class FetchError(RuntimeError):
    """A download that did not produce a verified file (offline, HTTP error, bad checksum)."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    file: str
    url: str
    sha256: str | None
    input: object            # [H, W] or 'dynamic'
    engine: str | None
    licence: str
    depth: str                # relative or metric
    max_depth_m: float | None = None
    recipe: str = 'official'  # a name under `recipes` in models.yaml

    @property
    def input_text(self) -> str:
        return 'x'.join(str(v) for v in self.input) if isinstance(self.input, (list, tuple)) else str(self.input)

    @property
    def depth_text(self) -> str:
        return f'{self.depth} (max {self.max_depth_m:g} m)' if self.max_depth_m else self.depth

    @property
    def direct(self) -> bool:
        """The URL is the file itself (not a page to pick files from)."""
        return self.url.rstrip('/').rsplit('/', 1)[-1] == self.file


def catalog_path() -> str:
    """models.yaml of the installed share directory, else of the source tree."""
    installed = share_path('models', 'models.yaml')
    if os.path.isfile(installed):
        return installed
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'models', 'models.yaml')


def load_catalog(path: str | None = None) -> list:
    import yaml
    path = path or catalog_path()
    with open(path, encoding='utf-8') as f:
        doc = yaml.safe_load(f) or {}
    entries = []
    for item in doc.get('models') or []:
        entries.append(ModelEntry(
            name=item['name'], file=item['file'], url=item['url'], sha256=(item.get('sha256') or None),
            input=item.get('input', 'dynamic'), engine=item.get('engine'), licence=item.get('licence', '?'),
            depth=item.get('depth', 'relative'), max_depth_m=item.get('max_depth_m'),
            recipe=item.get('recipe', DEFAULT_RECIPE)))
    return entries


DEFAULT_RECIPE = 'official'
RECIPE_FIELDS = tuple(Recipe().settings)


def load_recipes(path: str | None = None) -> dict:
    """name -> Recipe, from the `recipes` of models.yaml (ValueError naming a bad field);
    `official` is built in (the Recipe defaults) unless the file redefines it."""
    import yaml
    with open(path or catalog_path(), encoding='utf-8') as f:
        doc = yaml.safe_load(f) or {}
    recipes = {DEFAULT_RECIPE: Recipe(name=DEFAULT_RECIPE)}
    for name, settings in (doc.get('recipes') or {}).items():
        try:
            recipes[name] = Recipe(name=name, **settings)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path or catalog_path()}: recipe '{name}': {exc}") from exc
    return recipes


def catalog_entry(model_path: str, entries=None):
    """The models.yaml entry of this file: by file name, else by sha256 where an entry has one
    (hashing only then: no published checksum is known yet); None for an unknown model."""
    entries = entries if entries is not None else load_catalog()
    name = os.path.basename(model_path).lower()
    for entry in entries:
        if entry.file.lower() == name:
            return entry
    known = {e.sha256.lower(): e for e in entries if e.sha256}
    if known and os.path.isfile(model_path):
        return known.get(sha256_of(model_path))
    return None


def resolve_recipe(model_path: str | None, overrides: dict | None = None, catalog: str | None = None) -> Recipe:
    """The recipe named by `overrides['recipe']`, else the model's from models.yaml (`official`
    if it is not listed, or there is no model), with every field of `overrides` that is not
    'auto' (node parameters, tool options) put over it. ValueError names what to fix."""
    overrides = overrides or {}
    recipes = load_recipes(catalog)
    named = overrides.get('recipe')
    if named not in (None, 'auto'):
        if named not in recipes:
            raise ValueError(f"parameter recipe: '{named}' is not one of {sorted(recipes)} (models/models.yaml)")
        recipe = recipes[named]
    else:
        entry = catalog_entry(model_path, load_catalog(catalog)) if model_path else None
        if entry is None:
            recipe = recipes[DEFAULT_RECIPE]
        elif entry.recipe in recipes:
            recipe = recipes[entry.recipe]
        else:
            raise ValueError(f"models.yaml: recipe '{entry.recipe}' of {entry.name} is not under recipes "
                             f'(known: {sorted(recipes)})')
    changes = {k: v for k, v in overrides.items() if k in RECIPE_FIELDS and v not in (None, 'auto')}
    changes = {k: v for k, v in changes.items() if getattr(recipe, k) != v}
    if changes:
        recipe = dataclasses.replace(recipe, name=f'{recipe.name} with {", ".join(sorted(changes))} set',
                                     **changes)
    return recipe


def find(entries, name: str) -> ModelEntry:
    for entry in entries:
        if entry.name == name:
            return entry
    raise KeyError(f"no model named '{name}' (known: {', '.join(e.name for e in entries)})")


def models_dir(dest: str | None = None) -> str:
    return dest or os.path.join(cache_dir(), 'models')


def cached_path(entry: ModelEntry, dest: str | None = None) -> str:
    return os.path.join(models_dir(dest), entry.file)


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def manual_hint(entry: ModelEntry, path: str, url: str | None = None) -> str:
    return (f'download {entry.file} by hand from {url or entry.url} (on a machine with internet) '
            f'and put it at {path}')


def fetch(entry: ModelEntry, dest: str | None = None, url: str | None = None, timeout: float = 30.0,
          progress: bool = True, force: bool = False) -> tuple:
    """Download `entry` (from `url` if given) -> (path, sha256, 'downloaded' | 'present')."""
    path = cached_path(entry, dest)
    if not url and not entry.direct:
        raise FetchError(f'{entry.name} is published on a page, not as one file: {manual_hint(entry, path)}')
    if os.path.isfile(path) and not force:
        digest = sha256_of(path)
        if entry.sha256 is None or digest == entry.sha256.lower():
            return path, digest, 'present'
    os.makedirs(os.path.dirname(path), exist_ok=True)
    digest = download(url or entry.url, path, progress=progress, timeout=timeout,
                      hint=lambda u: manual_hint(entry, path, u))
    if entry.sha256 and digest != entry.sha256.lower():
        os.remove(path + '.part')
        raise FetchError(f'{entry.name}: sha256 of the download is {digest}, models.yaml expects '
                         f'{entry.sha256.lower()}; deleted it. Retry, or {manual_hint(entry, path, url)}')
    os.replace(path + '.part', path)
    return path, digest, 'downloaded'


def download(url: str, path: str, progress: bool = True, timeout: float = 30.0, hint=None) -> str:
    """`url` -> `path`.part (the caller renames it); returns its sha256. FetchError when offline."""
    import http.client
    import urllib.error
    import urllib.request
    part = path + '.part'
    hint = hint or (lambda u: f'download {u} by hand and put it at {path}')

    def offline(exc) -> FetchError:
        reason = getattr(exc, 'reason', None) or exc
        return FetchError(f'cannot download {url} ({reason}): {hint(url)}')

    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        raise offline(exc) from exc
    digest = hashlib.sha256()
    received = 0
    try:
        with response, open(part, 'wb') as f, _progress_bar(response, progress, os.path.basename(path)) as bar:
            total = bar.total
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (OSError, http.client.HTTPException) as exc:  # a drop or timeout mid-file
                    raise offline(exc) from exc
                if not chunk:
                    break
                f.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if total and received != total:
            raise FetchError(f'download of {url} stopped after {received} of {total} bytes: {hint(url)}')
    except BaseException:
        if os.path.exists(part):
            os.remove(part)
        raise
    return digest.hexdigest()


def _progress_bar(response, enabled: bool, label: str):
    length = response.headers.get('Content-Length')
    total = int(length) if length and length.isdigit() else None
    try:
        from tqdm import tqdm
    except ImportError:  # a bar is a nicety: download without one
        return _NoBar(total)
    return tqdm(total=total, unit='B', unit_scale=True, unit_divisor=1024, desc=label, file=sys.stderr,
                disable=not enabled, leave=True)


class _NoBar:
    def __init__(self, total):
        self.total = total

    def update(self, _n):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        return False


# DA-V2's metric checkpoints name their training set: depth_anything_v2_metric_hypersim_vits.pth,
# Depth-Anything-V2-Metric-Indoor-Small-hf. Each word must be a whole token of the file name.
METRIC_RANGE_BY_TOKEN = {'hypersim': 20.0, 'indoor': 20.0, 'vkitti': 80.0, 'outdoor': 80.0}


def name_tokens(path: str) -> list:
    """The lowercase words of a file name, split at every character that is not a letter or digit:
    'depth_anything_v2_metric_hypersim_vits.pth' -> [..., 'metric', 'hypersim', 'vits', 'pth']."""
    return [token for token in re.split(r'[^a-z0-9]+', os.path.basename(path).lower()) if token]


def metric_name(path: str) -> tuple:
    """(whether the name has the token 'metric', and then the range in metres its training-set
    token gives, or None). 'asymmetric' or 'nonmetric' are other words, not 'metric'."""
    tokens = name_tokens(path)
    if 'metric' not in tokens:
        return False, None
    ranges = [METRIC_RANGE_BY_TOKEN[t] for t in tokens if t in METRIC_RANGE_BY_TOKEN]
    return True, (ranges[0] if ranges else None)


def guess_depth_type(model_path: str, entries=None) -> tuple:
    """('relative' | 'metric', max depth in metres or None) for `depth_type: auto`.

    A file listed in models.yaml says so itself; otherwise a DA-V2 metric file name (the
    tokens 'metric' and 'hypersim'/'indoor' = 20 m or 'vkitti'/'outdoor' = 80 m, see
    `metric_name`) is metric, and anything else is taken as relative.
    """
    entry = catalog_entry(model_path, entries)
    if entry is not None:
        return entry.depth, entry.max_depth_m
    metric, max_depth = metric_name(model_path)
    if metric and max_depth is not None:
        return 'metric', max_depth
    return 'relative', None
