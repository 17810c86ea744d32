"""Depth scenes and metric references whose metres are known: a perfect relative model's output for
a true depth map, and the references a depth sensor would give for it."""
import numpy as np

SCALE, SHIFT = 0.37, 0.05          # 1/Z = SCALE * output + SHIFT


def relative_output(z):
    """A perfect relative model: affine in inverse depth, no unit; filled where the sensor had a hole."""
    out = (1.0 / z - SHIFT) / SCALE
    return np.where(np.isfinite(out), out, np.nanmedian(out)).astype(np.float32)


def sparse_reference(z, fraction, outliers, seed=0):
    """A reference with `fraction` of the pixels valid, `outliers` of those wrong (0.3-20 m)."""
    rng = np.random.default_rng(seed)
    valid = np.flatnonzero(np.isfinite(z))
    picked = rng.choice(valid, max(1, int(fraction * z.size)), replace=False)
    ref = np.full(z.shape, np.nan)
    ref.flat[picked] = z.flat[picked]
    bad = rng.choice(picked, int(outliers * picked.size), replace=False)
    ref.flat[bad] = rng.uniform(0.3, 20.0, bad.size)
    return ref


def patch_reference(truth, metres, noise_m=0.0, size=40):
    """A ToF seeing a flat wall in a narrow view: `metres` over a size x size patch, NaN elsewhere."""
    ref = np.full(truth.shape, np.nan)
    top, left = truth.shape[0] // 2, truth.shape[1] // 2
    rng = np.random.default_rng(3)
    ref[top:top + size, left:left + size] = metres + rng.uniform(-noise_m, noise_m, (size, size))
    return ref
