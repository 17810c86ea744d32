"""The known models and the named recipes (models/models.yaml), read once; which entry a model
file is, and which recipe it runs with. No ROS, no torch here (downloads: tool_support/download.py).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from .paths import share_path
from .recipe import OFFICIAL, Recipe

CHUNK = 1 << 20


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
    recipe: str = OFFICIAL    # a name under `recipes` in models.yaml

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
        name = os.path.basename(model_path).lower()
        for entry in self.models:
            if entry.file.lower() == name:
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
    return Catalog(path, models, recipes)


def _entry(item: dict) -> ModelEntry:
    return ModelEntry(name=item['name'], file=item['file'], url=item['url'], sha256=(item.get('sha256') or None),
                      input=item.get('input', 'dynamic'), engine=item.get('engine'),
                      licence=item.get('licence', '?'), depth=item.get('depth', 'relative'),
                      max_depth_m=item.get('max_depth_m'), recipe=item.get('recipe', OFFICIAL))


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()
