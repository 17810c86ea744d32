"""The hbm_runtime stand-in (test/hbm_sim/hbm_runtime: the documented API surface, computed with
ONNX Runtime). Loaded without entering sys.modules, so a missing hbm_runtime stays missing for every
test that does not install it (monkeypatch.setitem(sys.modules, 'hbm_runtime', sim))."""
import importlib.util
import os

SIM_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'hbm_sim')
SIM_DIR = os.path.join(SIM_ROOT, 'hbm_runtime')   # put SIM_ROOT on a process's PYTHONPATH to import it there

_spec = importlib.util.spec_from_file_location('hbm_runtime', os.path.join(SIM_DIR, '__init__.py'))
sim = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sim)
