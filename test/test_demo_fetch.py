"""The demo's real weights: fetched from models.yaml's direct URL (here a local HTTP server), checksum
verified; any failure falls back to the random-weight test model, saying why."""
import argparse
import contextlib
import dataclasses
import hashlib
import http.server
import threading

import pytest

from depth_anything_ros.core.model_catalog import load_catalog
from depth_anything_ros.tools import demo

PAYLOAD = b'not really an onnx model, but bytes to verify' * 100


@contextlib.contextmanager
def server(status=200):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = PAYLOAD if status == 200 else b'nope'
            self.send_response(status)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass
    httpd = http.server.HTTPServer(('127.0.0.1', 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{httpd.server_port}/depth_anything_v2_vits.onnx'
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def entry(sha256):
    """The demo's models.yaml entry with `sha256` as its checksum."""
    return dataclasses.replace(load_catalog().find(demo.REAL_MODEL), sha256=sha256)


def test_real_model_is_downloaded_and_verified(tmp_path):
    with server() as url:
        path, why = demo.real_model(url, str(tmp_path), entry(hashlib.sha256(PAYLOAD).hexdigest()), timeout=10)
    assert why is None and open(path, 'rb').read() == PAYLOAD
    assert path.endswith('depth_anything_v2_vits.onnx')


@pytest.mark.parametrize('status, sha256, reason', [
    (200, '0' * 64, 'sha256 of the download'),  # corrupted or wrong file
    (500, None, 'Internal Server Error'),
])
def test_a_failed_download_falls_back_with_the_reason(tmp_path, status, sha256, reason):
    with server(status) as url:
        path, why = demo.real_model(url, str(tmp_path), entry(sha256), timeout=10)
    assert path is None and reason in why
    assert list(tmp_path.iterdir()) == [], 'no partial file is left'


def test_offline_demo_uses_the_random_weight_model(monkeypatch, capsys):
    with server() as url:
        pass  # the port is closed now: the connection is refused, as offline
    monkeypatch.setattr(demo, 'default_model', lambda: '/cache/random.onnx')
    args = argparse.Namespace(model=None, no_download=False, model_url=url)
    assert demo.pick_model(args) == ('/cache/random.onnx', True)
    assert 'no real weights' in capsys.readouterr().out
    assert demo.pick_model(argparse.Namespace(model='/m.onnx', no_download=False, model_url=None)) == ('/m.onnx', False)
