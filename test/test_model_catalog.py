"""The model catalogue (models/models.yaml) and `depth-anything-ros models`: list, fetch (checksum,
offline), path; recipes by model and by name; the depth type from the catalogue or the file name.

Downloads come from a local http.server on 127.0.0.1 through a test catalog (--catalog) or a
mirror URL (--url); nothing leaves this machine. What this proves: every models.yaml entry is
listed with its file, input, engine, licence and depth kind; a download with the right sha256
lands at <dest>/<file> with the served bytes and no .part left; a wrong sha256 leaves nothing;
a closed port gives exit 1 and says where to download by hand and where to put the file.
"""
import hashlib
import os
import socket
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from depth_anything_ros import cli
from depth_anything_ros.core.depth_type import guess_depth_type
from depth_anything_ros.core.model_catalog import load_catalog

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAYLOAD = os.urandom(300_000)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *_args):
        pass


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp('served')
    (root / 'model.onnx').write_bytes(PAYLOAD)
    httpd = ThreadingHTTPServer(('127.0.0.1', 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}'
    httpd.shutdown()
    httpd.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _catalog(tmp_path, url, sha256):
    path = tmp_path / 'models.yaml'
    path.write_text(yaml.safe_dump({'models': [{
        'name': 'test_model', 'file': 'model.onnx', 'url': url, 'sha256': sha256, 'input': 'dynamic',
        'engine': 'onnxruntime', 'licence': 'Apache-2.0', 'depth': 'relative'}]}))
    return str(path)


def test_list_shows_every_entry(capsys):
    with open(os.path.join(REPO, 'models', 'models.yaml')) as f:
        entries = yaml.safe_load(f)['models']
    assert cli.main(['models', 'list']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(entries) + 1  # header + one row each
    for entry in entries:
        row = next((line for line in lines if line.split()[0] == entry['name']), None)
        assert row is not None, f"{entry['name']} not listed"
        size = 'x'.join(map(str, entry['input'])) if isinstance(entry['input'], list) else entry['input']
        for cell in (entry['file'], size, entry['licence'], entry['depth'], entry['engine'] or 'export first'):
            assert cell in row, f'{cell!r} missing from {row!r}'


def test_fetch_verifies_checksum(server, tmp_path, capsys):
    dest = tmp_path / 'dest'
    good = _catalog(tmp_path, f'{server}/model.onnx', hashlib.sha256(PAYLOAD).hexdigest())
    assert cli.main(['models', '--catalog', good, 'fetch', 'test_model', '--dest', str(dest)]) == 0
    out = capsys.readouterr().out
    assert 'checksum verified' in out
    assert (dest / 'model.onnx').read_bytes() == PAYLOAD
    assert os.listdir(dest) == ['model.onnx']  # no .part left
    assert cli.main(['models', '--catalog', good, 'path', 'test_model', '--dest', str(dest)]) == 0
    assert capsys.readouterr().out.strip() == str(dest / 'model.onnx')
    # Present and verified: not downloaded again.
    assert cli.main(['models', '--catalog', good, 'fetch', 'test_model', '--dest', str(dest)]) == 0
    assert 'already there' in capsys.readouterr().out


def test_wrong_checksum_leaves_nothing(server, tmp_path, capsys):
    dest = tmp_path / 'dest'
    bad = _catalog(tmp_path, f'{server}/model.onnx', '0' * 64)
    assert cli.main(['models', '--catalog', bad, 'fetch', 'test_model', '--dest', str(dest)]) == 1
    err = capsys.readouterr().err
    assert 'sha256' in err and hashlib.sha256(PAYLOAD).hexdigest() in err
    assert not os.path.exists(dest / 'model.onnx') and os.listdir(dest) == []
    assert cli.main(['models', '--catalog', bad, 'path', 'test_model', '--dest', str(dest)]) == 1
    assert 'not downloaded' in capsys.readouterr().err


def test_offline_says_where_to_put_the_file(tmp_path, capsys):
    dest = tmp_path / 'dest'
    url = f'http://127.0.0.1:{_closed_port()}/model.onnx'
    catalog = _catalog(tmp_path, url, None)
    assert cli.main(['models', '--catalog', catalog, 'fetch', 'test_model', '--dest', str(dest),
                     '--timeout', '5']) == 1
    err = capsys.readouterr().err
    assert 'by hand' in err and url in err and str(dest / 'model.onnx') in err
    assert not os.path.exists(dest / 'model.onnx')
    assert not os.path.exists(dest / 'model.onnx.part')


def test_mirror_url_pages_and_unknown_names(server, tmp_path, capsys):
    dest = str(tmp_path)
    # A real entry from a mirror: models.yaml gives no checksum, so none is checked.
    assert cli.main(['models', 'fetch', 'da_v2_small_onnx', '--dest', dest, '--url', f'{server}/model.onnx',
                     '--no-progress']) == 0
    assert 'no checksum' in capsys.readouterr().out
    assert (tmp_path / 'depth_anything_v2_vits.onnx').read_bytes() == PAYLOAD
    # Published as a page, not one file: no download attempted, instructions instead.
    assert cli.main(['models', 'fetch', 'da_v2_small_hf', '--dest', dest]) == 1
    assert 'by hand' in capsys.readouterr().err
    assert cli.main(['models', 'fetch', 'no_such_model']) == 2
    assert 'da_v2_small_onnx' in capsys.readouterr().err  # lists the known names


# ---------------------------------------------------------------- recipes

def resolve_recipe(model_path, overrides=None, catalog=None):
    """The recipe the node runs `model_path` with, given its parameters `overrides`."""
    models = load_catalog(catalog)
    return models.recipe(models.entry(model_path), overrides)


def test_every_catalogue_model_has_a_known_recipe():
    catalog = load_catalog()
    assert {'official', 'd_robotics_sample'} <= set(catalog.recipes)
    assert catalog.models and all(entry.recipe in catalog.recipes for entry in catalog.models)


def test_the_catalogue_is_read_once_per_processor(monkeypatch):
    """build_processor parses models.yaml once: recipe and depth type from the same entry."""
    from types import SimpleNamespace

    import yaml as yaml_module

    from depth_anything_ros.core.params import defaults
    from depth_anything_ros.core.preprocess import rgb_input
    from depth_anything_ros.core.processor_factory import build_processor
    parses = []
    real = yaml_module.safe_load
    monkeypatch.setattr(yaml_module, 'safe_load', lambda f: parses.append(f.name) or real(f))
    engine = SimpleNamespace(inputs=[rgb_input((14, 14))], outputs=[])
    processor = build_processor(defaults(model_path='/m/depth_anything_v2_metric_hypersim_vits.onnx'), engine)
    assert len(parses) == 1 and parses[0].endswith('models.yaml')
    assert (processor.depth_type, processor.max_depth, processor.estimator.recipe.name) == ('metric', 20, 'official')


def test_board_model_gets_the_official_recipe(tmp_path):
    """depth_any.hbm is DA-V2-Small compiled from a 1x3x518x686 ONNX: ImageNet input by default
    (issue 19); the D-Robotics sample's recipe stays selectable by name."""
    recipe = resolve_recipe(str(tmp_path / 'DEPTH_ANY.hbm'))       # by file name, in any folder
    assert recipe.name == 'official'
    assert recipe.settings == {'resize_mode': 'stretch', 'interpolation': 'cubic',
                               'normalization': 'imagenet', 'channel_order': 'rgb',
                               'upsampling': 'align_corners'}
    assert load_catalog().recipes['d_robotics_sample'].settings == {
        'resize_mode': 'stretch', 'interpolation': 'nearest', 'normalization': 'pixel_zscore',
        'channel_order': 'rgb', 'upsampling': 'pixel_centres'}


def test_d_robotics_sample_normalization_discards_luminance():
    """The sample's per-pixel z-score over a pixel's three channels: every grey pixel, black and
    white included, becomes exactly 0, so two scenes that differ only in brightness look the
    same to the network. ImageNet normalization keeps all 256 grey levels apart."""
    import numpy as np

    from depth_anything_ros.core.image_codec import Frame
    from depth_anything_ros.core.preprocess import RgbPreprocessor, rgb_input
    from depth_anything_ros.core.recipe import Recipe
    greys = np.repeat(np.arange(256, dtype=np.uint8), 4).reshape(32, 32)
    frame = Frame('bgr8', np.dstack([greys] * 3), 32, 32)
    for interpolation in ('nearest', 'cubic'):
        zscore = RgbPreprocessor(rgb_input((32, 32)),
                                 Recipe(normalization='pixel_zscore', interpolation=interpolation)).tensor(frame)[0]
        assert np.all(zscore == 0), interpolation
    imagenet = RgbPreprocessor(rgb_input((32, 32)), Recipe(normalization='imagenet', interpolation='nearest')).tensor(
        frame)[0]
    assert len(np.unique(imagenet[0, 0])) == 256
    # a dark and a bright version of one coloured scene: identical under the z-score
    rng = np.random.default_rng(0)
    scene = rng.integers(60, 120, (32, 32, 3)).astype(np.uint8)
    bright = (scene.astype(np.int32) + 100).astype(np.uint8)
    dark_in, bright_in = (RgbPreprocessor(rgb_input((32, 32)),
                                          Recipe(normalization='pixel_zscore', interpolation='nearest')).tensor(
        Frame('bgr8', image, 32, 32))[0] for image in (scene, bright))
    np.testing.assert_allclose(dark_in, bright_in, atol=1e-3)  # float32 rounding of the mean
    assert np.abs(dark_in).max() > 0.5


def test_unknown_and_official_models_get_the_official_recipe():
    for path in ('/models/my_export_518x686.onnx', '/x/depth_anything_v2_vits.onnx'):
        recipe = resolve_recipe(path)
        assert recipe.name == 'official'
        assert recipe.settings == {'resize_mode': 'stretch', 'interpolation': 'cubic',
                                   'normalization': 'imagenet', 'channel_order': 'rgb',
                                   'upsampling': 'align_corners'}


def test_parameters_override_single_fields():
    recipe = resolve_recipe('depth_any.hbm', {'resize_mode': 'letterbox', 'normalization': 'auto',
                                              'upsampling': 'align_corners', 'colormap': 'turbo'})
    assert recipe.resize_mode == 'letterbox' and recipe.normalization == 'imagenet'
    assert recipe.name == 'official with resize_mode set'   # same value: no override
    assert 'letterbox' in recipe.describe() and 'official' in recipe.describe()


def test_a_recipe_picked_by_name_then_single_fields():
    recipe = resolve_recipe('depth_any.hbm', {'recipe': 'd_robotics_sample', 'upsampling': 'align_corners'})
    assert recipe.name == 'd_robotics_sample with upsampling set'
    assert (recipe.normalization, recipe.upsampling) == ('pixel_zscore', 'align_corners')
    assert resolve_recipe(None, {'recipe': 'auto'}).name == 'official'     # no model: the default
    with pytest.raises(ValueError, match=r"parameter recipe: 'zscore' is not one of \['d_robotics_sample', "):
        resolve_recipe('depth_any.hbm', {'recipe': 'zscore'})


def test_model_recognised_by_checksum_under_another_name(tmp_path):
    model = tmp_path / 'renamed.onnx'
    model.write_bytes(PAYLOAD)
    catalog = tmp_path / 'models.yaml'
    catalog.write_text(yaml.safe_dump({
        'recipes': {'bgr_model': {'resize_mode': 'crop', 'interpolation': 'cubic', 'normalization': 'none',
                                  'channel_order': 'bgr', 'upsampling': 'align_corners'}},
        'models': [{'name': 'm', 'file': 'published.onnx', 'url': 'http://x/published.onnx',
                    'sha256': hashlib.sha256(PAYLOAD).hexdigest(), 'recipe': 'bgr_model'}]}))
    assert resolve_recipe(str(model), catalog=str(catalog)).name == 'bgr_model'
    model.write_bytes(PAYLOAD + b'x')                                   # another file: not it
    assert resolve_recipe(str(model), catalog=str(catalog)).name == 'official'


def test_bad_recipe_in_the_catalogue_names_it(tmp_path):
    catalog = tmp_path / 'models.yaml'
    catalog.write_text(yaml.safe_dump({'recipes': {'odd': {'interpolation': 'lanczos'}}, 'models': []}))
    with pytest.raises(ValueError, match="recipe 'odd'.*interpolation 'lanczos'"):
        resolve_recipe('a.onnx', catalog=str(catalog))
    catalog.write_text(yaml.safe_dump({'models': [{'name': 'm', 'file': 'a.onnx', 'url': 'u', 'recipe': 'gone'}]}))
    with pytest.raises(ValueError, match="recipe 'gone' of m"):
        resolve_recipe('a.onnx', catalog=str(catalog))


@pytest.mark.parametrize('path, expected', [
    ('/m/depth_anything_v2_metric_hypersim_vits.onnx', ('metric', 20.0)),
    ('/m/depth_anything_v2_metric_vkitti_vitl.onnx', ('metric', 80.0)),
    ('/m/Depth-Anything-V2-Metric-Indoor-Small.onnx', ('metric', 20.0)),
    ('/m/depth_anything_v2_metric_outdoor_vits_518x686.hbm', ('metric', 80.0)),
    ('/m/depth_anything_v2_vits_nonmetric.onnx', ('relative', None)),    # issue 18.6: 'metric' inside a word
    ('/m/asymmetric_pad_dav2.onnx', ('relative', None)),
    ('/m/hypersim_metricless.onnx', ('relative', None)),
    ('/m/my_metric.onnx', ('relative', None)),                           # no training set: say depth_type
    ('/metric_hypersim/depth_anything_v2_vits.onnx', ('relative', None)),   # the folder is not the name
    ('/m/depth_anything_v2_vits.onnx', ('relative', None)),              # models.yaml: relative
])
def test_depth_type_from_whole_tokens_of_the_file_name(path, expected):
    assert guess_depth_type(path, load_catalog().entry(path)) == expected


def test_the_catalogue_says_the_depth_type_of_its_files():
    catalog = load_catalog()
    for path, expected in (('/m/depth_anything_v2_metric_hypersim_vits.pth', ('metric', 20)),
                           ('/m/DEPTH_ANY.hbm', ('relative', None))):
        assert catalog.entry(path) is not None
        assert guess_depth_type(path, catalog.entry(path)) == expected


# ---------------------------------------------------------------- Depth Anything 3 (issue 22)

@pytest.mark.parametrize('path, name, depth', [
    ('/m/da3-small_280x504.onnx', 'da3_small', 'relative_depth'),
    ('/m/DA3-SMALL_378x504.ONNX', 'da3_small', 'relative_depth'),          # any case
    ('/m/da3-base_504x378.hbm', 'da3_base', 'relative_depth'),
    ('/m/da3-giant_280x504.onnx', 'da3_large_giant', 'relative_depth'),
    ('/m/da3mono-large_378x504.onnx', 'da3mono_large', 'relative_depth'),
    ('/m/da3metric-large_280x504.hbm', 'da3metric_large', 'metric_canonical'),
    ('/m/depth_anything_v2_vitl.pth', 'da_v2_base_large', 'relative'),    # {a,b} alternatives
])
def test_da3_models_are_known_by_their_whole_file_name(path, name, depth):
    catalog = load_catalog()
    entry = catalog.entry(path)
    assert (entry.name, entry.depth) == (name, depth)
    assert guess_depth_type(path, entry) == (depth, None)
    if name.startswith('da3'):
        assert catalog.recipe(entry).name == 'da3' and entry.licence in ('Apache-2.0', 'CC-BY-NC-4.0')
        assert set(entry.outputs.values()) <= {'confidence', 'sky'} and entry.outputs


@pytest.mark.parametrize('path', ['/m/my_da3-small_280x504.onnx', '/m/da3-small_280x504.onnx.bak',
                                  '/m/da3-small.onnx', '/m/da3-small_280x504_int8.onnx', '/m/da3-small_AxB.onnx',
                                  '/m/da3metric-large-280x504.onnx', '/da3metric-large_280x504.onnx/model.onnx'])
def test_names_that_only_contain_a_da3_name_are_not_it(path):
    """Never a substring: an unknown name is an unknown model (depth_type auto then reads its outputs)."""
    assert load_catalog().entry(path) is None


def test_the_catalogue_gives_the_da3_recipe_and_licences():
    catalog = load_catalog()
    assert catalog.recipes['da3'].settings == {'resize_mode': 'stretch', 'interpolation': 'area_cubic',
                                               'normalization': 'imagenet', 'channel_order': 'rgb',
                                               'upsampling': 'align_corners'}
    licences = {e.name: e.licence for e in catalog.models if e.name.startswith('da3')}
    assert licences == {'da3_small': 'Apache-2.0', 'da3_base': 'Apache-2.0', 'da3_large_giant': 'CC-BY-NC-4.0',
                        'da3mono_large': 'Apache-2.0', 'da3metric_large': 'Apache-2.0'}


@pytest.mark.parametrize('outputs, expected', [(('depth', 'sky'), 'relative_depth'),
                                               (('depth', 'depth_conf'), 'relative_depth'),
                                               (('predicted_depth',), 'relative')])
def test_an_unlisted_model_is_read_by_its_outputs_and_never_taken_for_metres(outputs, expected):
    """DA3Mono and DA3Metric are one network: under a name the catalogue does not know, DA3 outputs
    mean relative depth (growing with distance), never metres."""
    assert guess_depth_type('/m/exported.onnx', None, outputs) == (expected, None)


def test_bad_depth_kind_or_output_in_the_catalogue_names_it(tmp_path):
    catalog = tmp_path / 'models.yaml'
    catalog.write_text(yaml.safe_dump({'models': [{'name': 'm', 'file': 'a.onnx', 'url': 'u', 'depth': 'disparity'}]}))
    with pytest.raises(ValueError, match="depth 'disparity' of m"):
        load_catalog(str(catalog))
    catalog.write_text(yaml.safe_dump({'models': [{'name': 'm', 'file': 'a.onnx', 'url': 'u',
                                                   'outputs': {'sky': 'confidence'}}]}))
    with pytest.raises(ValueError, match='outputs .* of m'):
        load_catalog(str(catalog))
