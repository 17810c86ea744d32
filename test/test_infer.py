"""The `infer` subcommand: what it writes for images and videos equals the node's pipeline output."""
import json
import os

import cv2
import numpy as np
import pytest
from helpers.data import data_file

from depth_anything_ros import cli
from depth_anything_ros.engines import open_engine
from depth_anything_ros.core.image_codec import Frame
from depth_anything_ros.tool_support.files import read_frame
from depth_anything_ros.core.estimator import DepthEstimator
from depth_anything_ros.core.postprocess import Colorizer
from depth_anything_ros.tools.infer import PNG_MAX, encode_png16

pytestmark = pytest.mark.slow

# Two sizes, so a wrong HxW or a swapped axis shows (480x640 and 425x640).
IMAGES = ('redwood_synthetic/color/00000.jpg', 'natural_images/dav2_demo08.jpg')
VIDEO_FRAMES = 3


@pytest.fixture(scope='module')
def estimator(tiny_fixed_model):
    """The node's objects with infer's defaults: the official recipe (a test model is not in
    models.yaml), stretched to the fixed input."""
    return DepthEstimator(open_engine(tiny_fixed_model))


def estimate(estimator, frame) -> tuple:
    """(depth at the frame's size, model-resolution depth, Placement): infer's steps, taken one by one."""
    model = estimator.model_depth(frame)
    return estimator.restore(model.depth, model.placement), model.depth, model.placement


@pytest.fixture(scope='module')
def image_run(tmp_path_factory, tiny_fixed_model):
    folder = tmp_path_factory.mktemp('in')
    for rel in IMAGES:
        os.symlink(data_file(rel), folder / os.path.basename(rel))
    (folder / 'notes.txt').write_text('not an image')  # skipped: folders give their images only
    out = tmp_path_factory.mktemp('out')
    assert cli.main(['infer', '--model', tiny_fixed_model, '--out', str(out), str(folder)]) == 0
    return out


@pytest.fixture(scope='module')
def video_run(tmp_path_factory, tiny_fixed_model, sequence_video):
    out = tmp_path_factory.mktemp('video')
    argv = ['infer', '--model', tiny_fixed_model, '--out', str(out), '--max-frames', str(VIDEO_FRAMES),
            '--save-npy', sequence_video]
    assert cli.main(argv) == 0
    return out


def test_image_outputs_exist(image_run):
    names = [os.path.splitext(os.path.basename(rel))[0] for rel in IMAGES]
    expected = {f'{n}_{suffix}' for n in names
                for suffix in ('depth.npy', 'depth.png', 'depth.json', 'colorized.png')}
    assert set(os.listdir(image_run)) == expected


@pytest.mark.parametrize('rel', IMAGES)
def test_npy_equals_the_pipeline_output(image_run, estimator, rel):
    name = os.path.splitext(os.path.basename(rel))[0]
    frame = read_frame(data_file(rel))
    depth = np.load(image_run / f'{name}_depth.npy')
    assert depth.dtype == np.float32 and depth.shape == (frame.height, frame.width)
    expected, model_depth, placement = estimate(estimator, frame)
    np.testing.assert_array_equal(depth, expected)
    colorized = cv2.imread(str(image_run / f'{name}_colorized.png'))
    np.testing.assert_array_equal(colorized, Colorizer('inferno', 'percentile')(model_depth, placement))


@pytest.mark.parametrize('rel', IMAGES)
def test_png16_and_scale_recover_the_npy(image_run, rel):
    name = os.path.splitext(os.path.basename(rel))[0]
    depth = np.load(image_run / f'{name}_depth.npy')
    png = cv2.imread(str(image_run / f'{name}_depth.png'), cv2.IMREAD_UNCHANGED)
    meta = json.loads((image_run / f'{name}_depth.json').read_text())
    assert png.dtype == np.uint16 and png.shape == depth.shape
    assert meta['kind'] == 'relative inverse depth'
    finite = np.isfinite(depth)
    assert meta['max'] == pytest.approx(float(depth[finite].max()))
    assert meta['min'] == pytest.approx(float(depth[finite].min()))
    assert png.max() == PNG_MAX
    err = np.abs(png[finite] * meta['scale'] - depth[finite])
    assert err.max() <= meta['max'] / PNG_MAX


def test_encode_png16_edge_cases():
    png, meta = encode_png16(np.array([[np.nan, -1.0, 0.0, 2.0]], np.float32))
    assert png.tolist() == [[0, 0, 0, PNG_MAX]] and meta['scale'] == pytest.approx(2.0 / PNG_MAX)
    png, meta = encode_png16(np.full((2, 2), np.nan, np.float32))  # nothing seen
    assert not png.any() and meta['max'] is None and meta['scale'] == 1.0


def test_a_metric_model_writes_what_the_node_publishes(tmp_path, tiny_metric_model):
    """A metric model: the npy is metres masked beyond max_depth (NaN), as the node's `depth`;
    the PNG is millimetres, as its depth/mm; the sidecar says metres (it used to say relative
    and keep depths beyond max_depth)."""
    rel = IMAGES[0]
    frame = read_frame(data_file(rel))
    raw = estimate(DepthEstimator(open_engine(tiny_metric_model)), frame)[0]
    max_depth = float(np.median(raw))  # half the pixels beyond it
    assert cli.main(['infer', '--model', tiny_metric_model, '--max-depth', str(max_depth), '--out', str(tmp_path),
                     data_file(rel)]) == 0
    name = os.path.splitext(os.path.basename(rel))[0]
    depth = np.load(tmp_path / f'{name}_depth.npy')
    beyond = raw > max_depth
    assert 0.3 < beyond.mean() < 0.7
    assert np.isnan(depth[beyond]).all() and np.array_equal(depth[~beyond], raw[~beyond])
    meta = json.loads((tmp_path / f'{name}_depth.json').read_text())
    assert meta['kind'] == 'metres' and meta['scale'] == 0.001
    png = cv2.imread(str(tmp_path / f'{name}_depth.png'), cv2.IMREAD_UNCHANGED)
    assert not png[beyond].any()
    assert np.abs(png[~beyond] * 0.001 - depth[~beyond]).max() <= 0.0005 + 1e-6


def test_video_side_by_side(video_run, estimator, sequence_video):
    assert os.path.isfile(video_run / 'redwood_sequence_side_by_side.mp4')
    source = cv2.VideoCapture(sequence_video)
    written = cv2.VideoCapture(str(video_run / 'redwood_sequence_side_by_side.mp4'))
    frames = 0
    while True:
        ok, sbs = written.read()
        if not ok:
            break
        ok, bgr = source.read()
        h, w = bgr.shape[:2]
        assert sbs.shape == (h, 2 * w, 3)
        expected, model_depth, placement = estimate(estimator, Frame('bgr8', bgr, h, w))
        colorized = Colorizer()(model_depth, placement)
        # Lossy MPEG-4: close, not equal. Measured mean errors ~2.5 (input) and ~8.5 (the
        # random-weight depth is noisy, so it compresses worse); swapped halves differ by ~100.
        assert np.abs(sbs[:, :w].astype(int) - bgr).mean() < 8
        assert np.abs(sbs[:, w:].astype(int) - colorized).mean() < 20
        np.testing.assert_array_equal(
            np.load(video_run / f'redwood_sequence_{frames:06d}_depth.npy'), expected)
        frames += 1
    assert frames == VIDEO_FRAMES
    assert len([n for n in os.listdir(video_run) if n.endswith('.npy')]) == VIDEO_FRAMES


@pytest.mark.parametrize('case', ['missing_input', 'unreadable_image', 'unreadable_video',
                                  'out_not_writable', 'bad_model', 'same_names', 'bad_max_frames'])
def test_infer_errors_exit_2(capsys, tmp_path, tiny_fixed_model, case):
    image = data_file(IMAGES[0])
    out = str(tmp_path / 'out')
    (tmp_path / 'broken.jpg').write_bytes(b'not a jpeg')
    (tmp_path / 'broken.mp4').write_bytes(b'not a video')
    (tmp_path / 'file').write_text('')
    (tmp_path / 'model.onnx').write_text('not a model')
    os.mkdir(tmp_path / 'other')
    os.symlink(image, tmp_path / 'other' / os.path.basename(image))
    model = ['--model', tiny_fixed_model]
    argv, expect = {
        'missing_input': (model + ['--out', out, str(tmp_path / 'nope.jpg')], 'nope.jpg'),
        'unreadable_image': (model + ['--out', out, str(tmp_path / 'broken.jpg')], 'cannot read image'),
        'unreadable_video': (model + ['--out', out, str(tmp_path / 'broken.mp4')], 'cannot read video'),
        # A path below a regular file: not creatable even for root, which ignores permissions.
        'out_not_writable': (model + ['--out', str(tmp_path / 'file' / 'out'), image], 'writable'),
        'bad_model': (['--model', str(tmp_path / 'model.onnx'), '--out', out, image], 'model.onnx'),
        'same_names': (model + ['--out', out, image, str(tmp_path / 'other')], 'would both write'),
        'bad_max_frames': (model + ['--out', out, '--max-frames', '0', image], '--max-frames'),
    }[case]
    assert cli.main(['infer'] + argv) == 2
    err = capsys.readouterr().err
    assert err.startswith('depth-anything-ros infer: ') and expect in err
