"""The package's dependency rule (docs/architecture.md), its one-way-to-do-it rules, and the test
suite's own conventions, checked on the source with `ast`.

Every import counts wherever it is written (lazy imports inside functions too); relative imports are
resolved, and `from pkg import name` counts as importing pkg.name when that is a submodule. Imports
made by importlib at run time (cli.py's subcommands, the engines' backends) are not seen.

One way each: a size option says which order it takes (--model-size HxW, --camera-size WxH), an
output folder is --out; the node declares parameters only from core/params.py's table, in one loop;
no module but params.py lists parameter names (a runtime flag, an option group: the row says it)."""
import ast
import functools
import os
from dataclasses import dataclass

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = 'depth_anything_ros'

# Layers that never import rclpy or a ROS message themselves: what a ROS-free installation (the tools
# without ROS, a PC without rclpy) imports, and tools/, whose ROS work (camera, sink, demo, bench's graph
# runs) lives in ros/ and is called from there. ament_index_python is allowed: pure Python, optional
# (core/paths.py falls back when it is absent).
ROS_FREE = ('core', 'engines', 'tool_support', 'torch_models', 'tools', 'cli')
ROS_PACKAGES = {'rclpy', 'launch', 'launch_ros', 'launch_testing', 'launch_testing_ros', 'cv_bridge',
                'rosbag2_py', 'rosidl_runtime_py', 'tf2_ros', 'message_filters', 'image_transport'}
ROS_SUFFIXES = ('_msgs', '_srvs', '_interfaces')  # sensor_msgs, rcl_interfaces, hbm_img_msgs...
# PyTorch and the official model code (transformers for DA-V2, depth-anything-3 for DA3): dev/test
# extras that build test models and export; no node, engine or tool imports them but torch_models/.
DEV_ONLY = {'torch', 'torchvision', 'transformers', 'depth_anything_3', 'omegaconf', 'onnx', 'safetensors'}
DEV_ONLY_LAYERS = {'torch_models'}
# layer -> the layers of the package it may import (itself included); layers not listed are free.
MAY_IMPORT = {
    'engines': {'engines'},
    'core': {'core', 'engines'},
    'tool_support': {'core', 'engines', 'tool_support'},
    'ros': {'core', 'engines', 'ros'},
    'torch_models': {'torch_models', 'core', 'engines'},
}


@dataclass(frozen=True)
class Import:
    source: str   # the importing module
    path: str     # its file, relative to the root
    line: int
    target: str   # the imported module, absolute

    def __str__(self):
        return f'{self.path}:{self.line} imports {self.target}'


def package_modules(root: str, package: str) -> dict:
    """Module name -> its file relative to root, for every .py of the package."""
    modules = {}
    for folder, dirs, files in os.walk(os.path.join(root, package)):
        dirs[:] = sorted(d for d in dirs if d != '__pycache__')
        for name in sorted(files):
            if name.endswith('.py'):
                path = os.path.relpath(os.path.join(folder, name), root)
                parts = path[:-3].split(os.sep)
                modules['.'.join(parts[:-1] if parts[-1] == '__init__' else parts)] = path
    return modules


def _absolute(module: str, path: str, node: ast.ImportFrom) -> str:
    """The module a `from ... import` names, relative levels resolved."""
    if not node.level:
        return node.module
    package = module.split('.') if path.endswith('__init__.py') else module.split('.')[:-1]
    base = package[:len(package) - node.level + 1]
    return '.'.join(base + ([node.module] if node.module else []))


@functools.lru_cache()
def imports_of(root: str, package: str) -> tuple:
    """Every import of every module of the package, external ones included (parsed once per run)."""
    modules = package_modules(root, package)
    found = []
    for module, path in modules.items():
        with open(os.path.join(root, path), encoding='utf-8') as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [Import(module, path, node.lineno, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(module, path, node)
                for alias in node.names:  # `from pkg import sub` imports the submodule pkg.sub
                    submodule = f'{base}.{alias.name}'
                    found.append(Import(module, path, node.lineno, submodule if submodule in modules else base))
    return tuple(sorted(found, key=lambda i: (i.path, i.line, i.target)))


def layer(module: str) -> str:
    """core, engines, ros, tools, ..., 'cli' for cli.py; '' for the package's own __init__."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else ''


def ros_violations(imports: tuple) -> list:
    problems = []
    for imp in imports:
        top = imp.target.split('.')[0]
        if layer(imp.source) in ROS_FREE and (top in ROS_PACKAGES or top.endswith(ROS_SUFFIXES)):
            problems.append(f'{imp}: {layer(imp.source)}/ never imports ROS; only ros/ imports rclpy and '
                            'ROS messages (move the ROS part to ros/, pass plain values in)')
    return problems


def dev_only_violations(imports: tuple) -> list:
    return [f'{imp}: {imp.target.split(".")[0]} is a dev/test dependency (building and exporting '
            'models): only torch_models/ imports it' for imp in imports
            if imp.target.split('.')[0] in DEV_ONLY and layer(imp.source) not in DEV_ONLY_LAYERS]


def layer_violations(imports: tuple, package: str) -> list:
    problems = []
    for imp in imports:
        if imp.target != package and not imp.target.startswith(package + '.'):
            continue  # outside the package
        source, target = layer(imp.source), layer(imp.target)
        if source in MAY_IMPORT and target not in MAY_IMPORT[source]:
            allowed = ', '.join(f'{name}/' for name in sorted(MAY_IMPORT[source]))
            problems.append(f'{imp}: {source}/ may import only {allowed} of the package')
        elif source == 'tools' and target == 'tools' and imp.target != imp.source:
            problems.append(f'{imp}: a tool never imports another tool (move what they share to tool_support/)')
        elif source == 'tools' and imp.target == f'{package}.ros.node':
            problems.append(f'{imp}: tools never import ros/node.py (move what they share to core/)')
    return problems


def _strongly_connected(graph: dict) -> list:
    """Tarjan's components of graph (node -> set of nodes), each a list of nodes."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _cycle_through(start: str, edges: dict, members: set) -> list:
    """The shortest cycle from start back to start inside one component, as its Import edges."""
    paths, seen = {start: []}, set()
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target, imp in sorted(edges[node].items()):
                if target == start:
                    return paths[node] + [imp]
                if target in members and target not in seen:
                    seen.add(target)
                    paths[target] = paths[node] + [imp]
                    following.append(target)
        frontier = following
    raise AssertionError(f'no cycle through {start}')  # a component of more than one node always has one


def import_cycles(imports: tuple, root: str, package: str) -> list:
    """One message per import cycle among the package's modules, naming each import on it."""
    modules = package_modules(root, package)
    edges = {module: {} for module in modules}  # module -> {imported module: the first such Import}
    for imp in imports:
        if imp.target in modules:
            edges[imp.source].setdefault(imp.target, imp)
    problems = []
    for component in _strongly_connected({m: set(e) for m, e in edges.items()}):
        if len(component) > 1 or component[0] in edges[component[0]]:
            cycle = _cycle_through(component[0], edges, set(component))
            problems.append(f"import cycle: {' -> '.join(map(str, cycle))} "
                            '(break it: move the shared part down a layer, or pass it in)')
    return problems


# Option names that say too little: a size without its order, a second name for the output folder.
FORBIDDEN_OPTIONS = {'--size': 'a size option says its order: --model-size HxW or --camera-size WxH',
                     '--out-dir': 'an output folder is --out'}
# A literal tuple, list or set of this many parameter names outside params.py is a second list of them.
NAME_LIST = 3


def _trees(root: str, package: str):
    for module, path in package_modules(root, package).items():
        with open(os.path.join(root, path), encoding='utf-8') as f:
            yield module, path, ast.parse(f.read(), path)


def option_violations(root: str, package: str) -> list:
    """add_argument calls naming a FORBIDDEN_OPTIONS option."""
    problems = []
    for _, path, tree in _trees(root, package):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, 'attr', '') == 'add_argument':
                for arg in node.args:
                    if isinstance(arg, ast.Constant) and arg.value in FORBIDDEN_OPTIONS:
                        problems.append(f'{path}:{node.lineno} option {arg.value}: {FORBIDDEN_OPTIONS[arg.value]}')
    return problems


def declaration_violations(root: str, package: str) -> list:
    """declare_parameter(s) calls other than declare_parameter(p.name, ...) inside `for p in PARAMS`."""
    problems = []
    for _, path, tree in _trees(root, package):
        from_table = set()
        for loop in ast.walk(tree):
            if isinstance(loop, ast.For) and isinstance(loop.iter, ast.Name) and loop.iter.id == 'PARAMS':
                target = getattr(loop.target, 'id', None)
                from_table |= {id(call) for call in ast.walk(loop) if isinstance(call, ast.Call) and call.args
                               and isinstance(call.args[0], ast.Attribute) and call.args[0].attr == 'name'
                               and getattr(call.args[0].value, 'id', None) == target}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and getattr(node.func, 'attr', '') in ('declare_parameter',
                                                                                 'declare_parameters')
                    and id(node) not in from_table):
                problems.append(f'{path}:{node.lineno} declares a parameter outside the table: declare them in '
                                'one loop over core/params.py PARAMS (a new parameter is a row there)')
    return problems


def name_list_violations(root: str, package: str, names: set) -> list:
    """Literal collections of NAME_LIST or more parameter names outside core/params.py."""
    problems = []
    for module, path, tree in _trees(root, package):
        if module.endswith('core.params'):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                listed = [e.value for e in node.elts if isinstance(e, ast.Constant) and e.value in names]
                if len(listed) >= NAME_LIST:
                    problems.append(f'{path}:{node.lineno} lists parameters {listed}: say it in their rows of '
                                    'core/params.py (runtime, group) and select with in_groups()')
    return problems


def parameter_names() -> set:
    from depth_anything_ros.core.params import PARAMS
    return {p.name for p in PARAMS}


def test_the_checker_sees_the_package():
    imports = imports_of(REPO, PACKAGE)
    sources = {imp.source for imp in imports}
    assert {f'{PACKAGE}.{m}' for m in ('cli', 'core.params', 'engines.hbm_engine', 'ros.node')} <= sources
    # ros/ is where rclpy belongs: a checker that cannot see it there could not see it anywhere.
    assert any(layer(i.source) == 'ros' and i.target.startswith('rclpy') for i in imports)


def test_ros_free_layers_never_import_ros():
    problems = ros_violations(imports_of(REPO, PACKAGE))
    assert not problems, '\n'.join(problems)


def test_only_torch_models_imports_pytorch_and_the_official_model_code():
    imports = imports_of(REPO, PACKAGE)
    problems = dev_only_violations(imports)
    assert not problems, '\n'.join(problems)
    # what the rule is about is there to be seen: the DA-V2 and DA3 builders
    found = {i.target.split('.')[0] for i in imports if layer(i.source) == 'torch_models'}
    assert {'torch', 'transformers', 'depth_anything_3'} <= found, found


def test_layers_import_only_the_layers_below():
    problems = layer_violations(imports_of(REPO, PACKAGE), PACKAGE)
    assert not problems, '\n'.join(problems)


def test_no_import_cycles():
    problems = import_cycles(imports_of(REPO, PACKAGE), REPO, PACKAGE)
    assert not problems, '\n'.join(problems)


def test_size_and_output_options_have_one_name_each():
    problems = option_violations(REPO, PACKAGE)
    assert not problems, '\n'.join(problems)


def test_parameters_are_declared_only_from_the_table():
    assert not declaration_violations(REPO, PACKAGE)
    # the rule has something to hold: the node's loop is seen
    node = os.path.join(REPO, PACKAGE, 'ros', 'node.py')
    with open(node, encoding='utf-8') as f:
        assert 'declare_parameter(p.name' in f.read()


def test_no_second_list_of_parameter_names():
    problems = name_list_violations(REPO, PACKAGE, parameter_names())
    assert not problems, '\n'.join(problems)


FAKE = {  # a package breaking each rule once, beside allowed imports that must not be reported
    '__init__.py': '',
    'core/__init__.py': '',
    'core/bad.py': 'import os\n\n\ndef f():\n    from rclpy.node import Node\n',
    'core/paths.py': 'def f():\n    from ament_index_python.packages import get_package_share_directory\n',
    'core/one.py': 'from . import two\n',
    'core/two.py': 'def f():\n    from .one import g\n',
    'engines/__init__.py': 'class Engine:\n    pass\n',
    'engines/backend.py': 'from . import Engine\nfrom ..core import paths\n',
    'ros/__init__.py': '',
    'ros/node.py': 'import rclpy\nfrom sensor_msgs.msg import Image\nfrom ..core import paths\n',
    'tools/__init__.py': '',
    'tools/a.py': 'from ..ros import node\n',
    'tools/b.py': 'def run():\n    import rclpy\n    from ..ros.node import x\n    from .a import y\n',
    'tools/c.py': 'def run():\n    from ..ros import process_graph\n    from sensor_msgs.msg import Image\n',
    'tools/d.py': 'def run():\n    import torch\n',
    'torch_models/__init__.py': '',
    'torch_models/net.py': 'from depth_anything_3.cfg import create_object\nimport torch\n',
}


def test_the_checker_reports_each_kind_of_violation(tmp_path):
    for path, text in FAKE.items():
        (tmp_path / 'fake' / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / 'fake' / path).write_text(text)
    root = str(tmp_path)
    imports = imports_of(root, 'fake')
    ros = ros_violations(imports)
    assert [p.split(': ')[0] for p in ros] == [
        os.path.join('fake', 'core', 'bad.py') + ':5 imports rclpy.node',
        os.path.join('fake', 'tools', 'b.py') + ':2 imports rclpy',           # tools/: through ros/ only
        os.path.join('fake', 'tools', 'c.py') + ':3 imports sensor_msgs.msg',
    ], ros
    layers = layer_violations(imports, 'fake')
    assert [p.split(': ')[0] for p in layers] == [
        os.path.join('fake', 'engines', 'backend.py') + ':2 imports fake.core.paths',
        os.path.join('fake', 'tools', 'a.py') + ':1 imports fake.ros.node',
        os.path.join('fake', 'tools', 'b.py') + ':3 imports fake.ros.node',
        os.path.join('fake', 'tools', 'b.py') + ':4 imports fake.tools.a',
    ], layers
    dev = dev_only_violations(imports)
    assert [p.split(': ')[0] for p in dev] == [os.path.join('fake', 'tools', 'd.py') + ':2 imports torch'], dev
    cycles = import_cycles(imports, root, 'fake')
    assert len(cycles) == 1, cycles
    assert cycles[0].startswith(f"import cycle: {os.path.join('fake', 'core', 'one.py')}:1 imports fake.core.two -> "
                                f"{os.path.join('fake', 'core', 'two.py')}:2 imports fake.core.one "), cycles


CONVENTIONS = {  # each convention broken once, beside what it allows
    'tools/__init__.py': '',
    'tools/cam.py': ("def add_arguments(p):\n    p.add_argument('--size')\n    p.add_argument('--camera-size')\n"
                     "    p.add_argument('--model-size')\n    p.add_argument('--out')\n"
                     "    p.add_argument('--frames', '--out-dir')\n"),
    'ros/__init__.py': '',
    'ros/node.py': ("from ..core.params import PARAMS\n\n\ndef declare(node):\n    for p in PARAMS:\n"
                    "        node.declare_parameter(p.name, p.default)\n"
                    "    node.declare_parameter('extra', 1)\n    for q in PARAMS:\n"
                    "        node.declare_parameter(p.name, 0)\n"),
    'ros/more.py': "def f(node):\n    node.declare_parameters('', [('a', 1)])\n",
    'core/__init__.py': '',
    'core/params.py': "RUNTIME = ('colormap', 'color_min', 'color_max')\n",
    'core/view.py': ("RUNTIME = ('colormap', 'color_min', 'color_max')\nPAIR = ['colormap', 'color_min']\n"
                     "WORDS = {'colormap', 'palette', 'hue', 'tint'}\n"),
}


def test_the_checker_reports_each_broken_convention(tmp_path):
    for path, text in CONVENTIONS.items():
        (tmp_path / 'fake' / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / 'fake' / path).write_text(text)
    root = str(tmp_path)
    cam = os.path.join('fake', 'tools', 'cam.py')
    assert [p.split(': ')[0] for p in option_violations(root, 'fake')] == [f'{cam}:2 option --size',
                                                                             f'{cam}:6 option --out-dir']
    node, more = os.path.join('fake', 'ros', 'node.py'), os.path.join('fake', 'ros', 'more.py')
    found = declaration_violations(root, 'fake')
    # the loop's own call passes; a literal name, a call in a loop that reads another row, declare_parameters do not
    assert sorted(p.split(' declares')[0] for p in found) == [f'{more}:2', f'{node}:7', f'{node}:9'], found
    lists = name_list_violations(root, 'fake', {'colormap', 'color_min', 'color_max'})
    assert [p.split(' lists')[0] for p in lists] == [os.path.join('fake', 'core', 'view.py') + ':1'], lists


# ---------------------------------------------------------------- one way: camera messages in, outputs out
# image_codec's message decoders: only camera_messages.camera_frame turns camera message fields into a Frame.
FRAME_DECODERS = {'decode_image', 'decode_compressed', 'check_compressed'}
FRAME_PATH_MODULES = {'core.image_codec', 'core.camera_messages'}
# ROS output messages are built from plain fields in ros/messages.py only (rosbags ones in bag_io).
OUTPUT_MESSAGES = {'Image', 'PointCloud2', 'PointField'}
MESSAGE_MODULES = {'ros.messages'}
# The output topics are named in core/output_topics.py only (the node, bag, sink and load client use it).
OUTPUT_TOPIC_NAMES = {f'{prefix}{suffix}' for prefix in ('depth', '/depth', '')
                      for suffix in ('/relative', '/colorized', '/mm', '/points')}
TOPIC_MODULES = {'core.output_topics'}


@functools.lru_cache()
def _tree(path: str) -> ast.Module:
    with open(path, encoding='utf-8') as f:
        return ast.parse(f.read(), path)


def _where(root: str, package: str, exempt: set, found) -> list:
    """(relative path, line, what) for each found(node) in every module of the package but `exempt`
    (module names relative to the package)."""
    hits = []
    for module, path in package_modules(root, package).items():
        if module.split('.', 1)[-1] in exempt:
            continue
        for node in ast.walk(_tree(os.path.join(root, path))):
            what = found(node)
            if what:
                hits.append((path, node.lineno, what))
    return sorted(hits)


def _named(node, names: set):
    """The name in `names` that node uses or imports (a Name, an attribute, an imported alias)."""
    if isinstance(node, ast.Name) and node.id in names:
        return node.id
    if isinstance(node, ast.Attribute) and node.attr in names:
        return node.attr
    if isinstance(node, ast.ImportFrom):
        return next((a.name for a in node.names if a.name in names), None)
    return None


def frame_path_violations(root: str, package: str) -> list:
    return [f'{path}:{line} uses image_codec.{name}: camera messages become Frames only through '
            'core/camera_messages.camera_frame (the node, bag and the tools alike)'
            for path, line, name in _where(root, package, FRAME_PATH_MODULES,
                                           lambda node: _named(node, FRAME_DECODERS))]


def message_building_violations(root: str, package: str) -> list:
    def constructed(node):
        return _named(node.func, OUTPUT_MESSAGES) if isinstance(node, ast.Call) else None
    return [f'{path}:{line} builds a {name}: ROS messages are built from plain fields in ros/messages.py only'
            for path, line, name in _where(root, package, MESSAGE_MODULES, constructed)]


def topic_name_violations(root: str, package: str) -> list:
    def topic(node):
        return isinstance(node, ast.Constant) and node.value in OUTPUT_TOPIC_NAMES and node.value
    return [f'{path}:{line} names the output topic {name!r}: take it from core/output_topics.py'
            for path, line, name in _where(root, package, TOPIC_MODULES, topic)]


def test_camera_messages_become_frames_one_way():
    problems = frame_path_violations(REPO, PACKAGE)
    assert not problems, '\n'.join(problems)


def test_output_messages_are_built_one_way():
    problems = message_building_violations(REPO, PACKAGE)
    assert not problems, '\n'.join(problems)


def test_output_topics_are_named_one_way():
    problems = topic_name_violations(REPO, PACKAGE)
    assert not problems, '\n'.join(problems)


# ---------------------------------------------------------------- the test suite's conventions
TESTS = os.path.join(REPO, 'test')


def suite_sources(test_root: str) -> dict:
    """Path relative to test_root -> path, for every .py of the suite (helpers and stand-ins included)."""
    found = {}
    for folder, dirs, files in os.walk(test_root):
        dirs[:] = sorted(d for d in dirs if d not in ('__pycache__', 'data'))
        for name in sorted(files):
            if name.endswith('.py'):
                path = os.path.join(folder, name)
                found[os.path.relpath(path, test_root)] = path
    return found


def _is_test_module(relpath: str) -> bool:
    return os.sep not in relpath and os.path.basename(relpath).startswith('test_')


def suite_import_violations(test_root: str) -> list:
    """Imports of a test module or of conftest, anywhere in the suite: what tests share lives in helpers/."""
    problems = []
    for rel, path in suite_sources(test_root).items():
        for node in ast.walk(_tree(path)):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and not node.level and node.module else [])
            for name in names:
                top = name.split('.')[0]
                if top == 'conftest' or top.startswith('test_'):
                    problems.append(f'{rel}:{node.lineno} imports {name}: tests import what they share from '
                                    'helpers/, never a test module or conftest')
    return sorted(problems)


def _top_functions(path: str) -> dict:
    return {n.name: n.lineno for n in _tree(path).body if isinstance(n, ast.FunctionDef)}


def helper_redefinition_violations(test_root: str) -> list:
    """A test module's top-level function named like a helpers/ function: a second copy of it."""
    sources = suite_sources(test_root)
    helpers = {name: rel for rel, path in sources.items() if rel.startswith('helpers' + os.sep)
               for name in _top_functions(path) if not name.startswith('_')}
    return [f'{rel}:{line} defines {name}, which {helpers[name]} has: use that one'
            for rel, path in sources.items() if _is_test_module(rel)
            for name, line in _top_functions(path).items() if name in helpers]


def _private(name) -> bool:
    return isinstance(name, str) and name.startswith('_') and not name.startswith('__')


def private_patch_violations(test_root: str) -> list:
    """Assigning or deleting another object's private attribute, or monkeypatching one: tests drive the
    node through helpers.node_harness (injected engine, recorded publishers), not through its insides."""
    problems = []
    for rel, path in suite_sources(test_root).items():
        for node in ast.walk(_tree(path)):
            targets = (node.targets if isinstance(node, (ast.Assign, ast.Delete)) else
                       [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
            patched = [t.attr for t in targets if isinstance(t, ast.Attribute) and _private(t.attr)
                       and not (isinstance(t.value, ast.Name) and t.value.id in ('self', 'cls'))]
            if isinstance(node, ast.Call) and _named(node.func, {'setattr', 'delattr'}) and len(node.args) >= 2 \
                    and isinstance(node.args[1], ast.Constant) and _private(node.args[1].value):
                patched.append(node.args[1].value)
            problems += [f'{rel}:{node.lineno} patches {name}: drive the code through its public interface '
                         '(helpers.node_harness for the node)' for name in patched]
    return sorted(problems)


def conftest_side_effect_violations(path: str) -> list:
    """conftest.py statements that run something when pytest imports it: only imports, definitions and
    literal constants belong there (the DDS domain and ROS environment are set in pytest_configure)."""
    problems = []
    for node in _tree(path).body:
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        if isinstance(node, ast.Assign):
            try:
                ast.literal_eval(node.value)
                continue
            except ValueError:
                pass
        problems.append(f'{os.path.basename(path)}:{node.lineno} runs at import: move it into a pytest hook '
                        '(pytest_configure) or a fixture')
    return problems


def test_tests_import_helpers_never_each_other_or_conftest():
    problems = suite_import_violations(TESTS)
    assert not problems, '\n'.join(problems)


def test_no_test_module_has_its_own_copy_of_a_helper():
    problems = helper_redefinition_violations(TESTS)
    assert not problems, '\n'.join(problems)


def test_tests_patch_no_private_attribute():
    problems = private_patch_violations(TESTS)
    assert not problems, '\n'.join(problems)


def test_conftest_runs_nothing_at_import():
    problems = conftest_side_effect_violations(os.path.join(TESTS, 'conftest.py'))
    assert not problems, '\n'.join(problems)


def test_the_convention_checkers_see_what_they_check():
    """Each rule has something to apply to here: the one frame path, the messages, the topics, the helpers."""
    assert 'helpers' + os.sep + 'node_harness.py' in suite_sources(TESTS)
    assert {'wait_until', 'data_file', 'domain_for'} <= {
        name for rel, path in suite_sources(TESTS).items() if rel.startswith('helpers')
        for name in _top_functions(path)}
    calls = _where(REPO, PACKAGE, set(), lambda node: _named(node, FRAME_DECODERS))
    assert {p for p, _, _ in calls} == {os.path.join(PACKAGE, 'core', 'image_codec.py'),
                                        os.path.join(PACKAGE, 'core', 'camera_messages.py')}


FAKE_WAYS = {  # one breach of each one-way rule, beside allowed uses
    '__init__.py': '',
    'core/__init__.py': '',
    'core/image_codec.py': 'def decode_image():\n    pass\n\n\ndef f():\n    return decode_image()\n',
    'core/camera_messages.py': 'from .image_codec import decode_image\n',
    'core/output_topics.py': "SUFFIX = '/colorized'\n",
    'ros/__init__.py': '',
    'ros/messages.py': 'from sensor_msgs.msg import Image\n\n\ndef image():\n    return Image()\n',
    'ros/node.py': ('from sensor_msgs.msg import Image\nfrom ..core.image_codec import decode_image\n\n\n'
                    "def f(node):\n    node.create_publisher(Image, 'depth/colorized', 1)\n    return Image()\n"),
    'tool_support/__init__.py': '',
    'tool_support/bag_io.py': ("from ..core import image_codec\n\n\ndef f(t):\n    x = image_codec.check_compressed\n"
                               "    return f'{t}/mm', 'depth/camera_info', x\n"),
}
FAKE_TESTS = {  # one breach of each suite rule, beside allowed uses
    'conftest.py': ('"""Docstring."""\nimport os\n\nfrom helpers import dds\n\nTIERS = (\'unit\', \'slow\')\n'
                    'FIRST = dds.claim_domains()\n\n\ndef pytest_configure(config):\n    dds.claim_domains()\n'),
    'helpers/__init__.py': '',
    'helpers/threads.py': 'def wait_until(predicate):\n    return predicate()\n\n\ndef _private():\n    pass\n',
    'helpers/harness.py': 'from conftest import X\n\n\nclass H:\n    def __init__(self):\n        self._x = 1\n',
    'test_a.py': ('import test_b\nfrom helpers.threads import wait_until\n\n\ndef _private():\n    pass\n\n\n'
                  'def test_x(node, monkeypatch):\n    node.warn._log = print\n    node.__init__ = None\n'
                  "    monkeypatch.setattr(node, '_run', None)\n    del node._cache\n"),
    'test_b.py': ('from conftest import data_file\n\n\ndef wait_until(predicate):\n    return True\n\n\n'
                  "def test_y(monkeypatch):\n    setattr(object, '_z', 1)\n"),
}


def _write(root, files: dict):
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)


def test_the_one_way_checkers_report_each_kind_of_violation(tmp_path):
    _write(tmp_path / 'fake', FAKE_WAYS)
    root, node, bag = str(tmp_path), os.path.join('fake', 'ros', 'node.py'), os.path.join('fake', 'tool_support',
                                                                                             'bag_io.py')
    assert [p.split(' uses')[0] for p in frame_path_violations(root, 'fake')] == [f'{node}:2', f'{bag}:5']
    assert [p.split(' builds')[0] for p in message_building_violations(root, 'fake')] == [f'{node}:7']
    assert [p.split(': ')[0] for p in topic_name_violations(root, 'fake')] == [
        f"{node}:6 names the output topic 'depth/colorized'", f"{bag}:6 names the output topic '/mm'"]


def test_the_suite_checkers_report_each_kind_of_violation(tmp_path):
    _write(tmp_path, FAKE_TESTS)
    root, harness = str(tmp_path), os.path.join('helpers', 'harness.py')
    assert [p.split(': ')[0] for p in suite_import_violations(root)] == sorted([
        f'{harness}:1 imports conftest', 'test_a.py:1 imports test_b', 'test_b.py:1 imports conftest'])
    assert [p.split(',')[0] for p in helper_redefinition_violations(root)] == ['test_b.py:4 defines wait_until']
    assert [p.split(': ')[0] for p in private_patch_violations(root)] == [
        'test_a.py:10 patches _log', 'test_a.py:12 patches _run', 'test_a.py:13 patches _cache',
        'test_b.py:9 patches _z']
    assert [p.split(' runs')[0] for p in conftest_side_effect_violations(str(tmp_path / 'conftest.py'))] == [
        'conftest.py:7']
