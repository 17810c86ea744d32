"""The known models and the named recipes (models/models.yaml), read once; which entry a model
file is, and which recipe it runs with. No ROS, no torch here (downloads: tool_support/download.py).

An entry's `file` is matched against the whole file name, case-insensitively, never as a substring;
it may hold `{a,b}` (one of the words; `{,b}`: b or nothing) and `{size}` (an input size HxW, digits: a
DA3 ONNX is exported at one size, `da3-small_280x504.onnx`).
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
from dataclasses import dataclass, field

from .depth_type import DEPTH_KINDS, EXTRA_OUTPUTS
from .paths import share_path
from .recipe import OFFICIAL, Recipe

CHUNK = 1 << 20
_SIZE = '{size}'


@dataclass(frozen=True)
class ModelEntry:
    name: str
    file: str
    url: str
    sha256: str | None
    input: object            # [H, W] or 'dynamic'
    engine: str | None
    licence: str
    depth: str                # a depth_type.DEPTH_KINDS name
    max_depth_m: float | None = None
    recipe: str = OFFICIAL    # a name under `recipes` in models.yaml
    outputs: dict = field(default_factory=dict)   # outputs beside depth: name -> depth_type.EXTRA_OUTPUTS kind

    def matches(self, file_name: str) -> bool:
        """Whether `file_name` (no folder) is this entry's file (see the module docstring)."""
        return file_pattern(self.file).fullmatch(file_name.lower()) is not None

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


@dataclass(frozen=True)
class Catalog:
    """models.yaml: `models` (ModelEntry, in file order) and `recipes` (name -> Recipe; `official`
    is built in, the Recipe defaults, unless the file redefines it)."""
    path: str
    models: tuple
    recipes: dict

    def find(self, name: str) -> ModelEntry:
        for entry in self.models:
            if entry.name == name:
                return entry
        raise KeyError(f"no model named '{name}' (known: {', '.join(e.name for e in self.models)})")

    def entry(self, model_path: str | None) -> ModelEntry | None:
        """The entry of this model file: by file name, else by sha256 where an entry has one
        (hashing only then: no published checksum is known yet); None for an unknown model."""
        if not model_path:
            return None
        name = os.path.basename(model_path)
        for entry in self.models:
            if entry.matches(name):
                return entry
        known = {e.sha256.lower(): e for e in self.models if e.sha256}
        if known and os.path.isfile(model_path):
            return known.get(sha256_of(model_path))
        return None

    def recipe(self, entry: ModelEntry | None, overrides: dict | None = None) -> Recipe:
        """The recipe named by `overrides['recipe']`, else the entry's (`official` for no entry),
        with every single-field override that is set put over it (Recipe.overridden).
        ValueError names what to fix."""
        overrides = overrides or {}
        named = overrides.get('recipe')
        if named in (None, 'auto'):
            named = entry.recipe if entry is not None else OFFICIAL
        elif named not in self.recipes:
            raise ValueError(f"parameter recipe: '{named}' is not one of {sorted(self.recipes)} (models/models.yaml)")
        return self.recipes[named].overridden(overrides)


@functools.lru_cache(maxsize=None)
def file_pattern(file: str) -> re.Pattern:
    """The regular expression of an entry's `file`: `{size}` digits x digits, `{a,b}` a or b."""
    parts = []
    for literal, braced in re.findall(r'([^{]*)(\{[^}]*\})?', file.lower()):
        parts.append(re.escape(literal))
        if braced == _SIZE:
            parts.append(r'[0-9]+x[0-9]+')
        elif braced:
            parts.append('(?:' + '|'.join(re.escape(word) for word in braced[1:-1].split(',')) + ')')
    return re.compile(''.join(parts))


def catalog_path() -> str:
    """models.yaml of the installed share directory, else of the source tree."""
    installed = share_path('models', 'models.yaml')
    if os.path.isfile(installed):
        return installed
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'models', 'models.yaml')


def load_catalog(path: str | None = None) -> Catalog:
    """models.yaml parsed (OSError, or ValueError naming a bad recipe or entry)."""
    import yaml
    path = path or catalog_path()
    with open(path, encoding='utf-8') as f:
        doc = yaml.safe_load(f) or {}
    recipes = {OFFICIAL: Recipe(name=OFFICIAL)}
    for name, settings in (doc.get('recipes') or {}).items():
        try:
            recipes[name] = Recipe(name=name, **settings)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: recipe '{name}': {exc}") from exc
    models = tuple(_entry(item) for item in doc.get('models') or [])
    for entry in models:
        if entry.recipe not in recipes:
            raise ValueError(f"{path}: recipe '{entry.recipe}' of {entry.name} is not under recipes "
                             f'(known: {sorted(recipes)})')
        if entry.depth not in DEPTH_KINDS:
            raise ValueError(f"{path}: depth '{entry.depth}' of {entry.name} is not one of {list(DEPTH_KINDS)}")
        if any(EXTRA_OUTPUTS.get(name) != kind for name, kind in entry.outputs.items()):
            raise ValueError(f'{path}: outputs {entry.outputs} of {entry.name}: the known ones are {EXTRA_OUTPUTS}')
    return Catalog(path, models, recipes)


def _entry(item: dict) -> ModelEntry:
    return ModelEntry(name=item['name'], file=item['file'], url=item['url'], sha256=(item.get('sha256') or None),
                      input=item.get('input', 'dynamic'), engine=item.get('engine'),
                      licence=item.get('licence', '?'), depth=item.get('depth', 'relative'),
                      max_depth_m=item.get('max_depth_m'), recipe=item.get('recipe', OFFICIAL),
                      outputs=dict(item.get('outputs') or {}))


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()
