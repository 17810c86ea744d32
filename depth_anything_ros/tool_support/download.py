"""Downloads of the known models (`models fetch`, the demo's real weights). No ROS here.

Downloads go to <cache>/models/<file> through a .part file renamed only when the whole file
arrived and its sha256 matches, so a cached file is always complete.
"""
from __future__ import annotations

import hashlib
import os
import sys

from ..core.model_catalog import CHUNK, ModelEntry, sha256_of
from ..core.paths import cache_dir


class FetchError(RuntimeError):
    """A download that did not produce a verified file (offline, HTTP error, bad checksum)."""


def models_dir(dest: str | None = None) -> str:
    return dest or os.path.join(cache_dir(), 'models')


def cached_path(entry: ModelEntry, dest: str | None = None) -> str:
    return os.path.join(models_dir(dest), entry.file)


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
