"""tools/compare_intermediates.py: the bisecting tool reports differences and runs on a zoo model."""
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(HERE, "..", "..", "tools", "compare_intermediates.py")
sys.path.insert(0, os.path.dirname(TOOL))
sys.path.insert(0, HERE)
from compare_intermediates import difference  # noqa: E402
from test_zoo import KILN, ZOO, ensure_zoo  # noqa: E402


def test_difference_reports_mismatches():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert difference(a, a)[1] == 0.0
    line, rel = difference(a, a * 1.01)
    assert 0.009 < rel < 0.011 and "max abs 0.05" in line
    assert difference(a, a.T)[1] == np.inf
    i = np.array([3, 1, 2], np.int64)
    line, rel = difference(i, i[::-1].copy())
    assert rel == np.inf and "2 of 3 differ" in line


def test_runs_on_a_zoo_model(tmp_path):
    ensure_zoo()
    x = np.random.default_rng(0).standard_normal((1, 1, 24, 24)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    r = subprocess.run([sys.executable, TOOL, os.path.join(ZOO, "super_resolution.onnx"), "--input",
                        f"input={tmp_path / 'x.npy'}", "--ops", "Relu", "--values", "output", "--kiln", KILN],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert len([s for s in lines if ": float32[" in s]) == 4, r.stdout  # three Relu outputs, then the output
    assert lines[-2].startswith("output:") and lines[-1].startswith("all within"), r.stdout
