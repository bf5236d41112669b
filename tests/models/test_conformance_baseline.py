"""`kiln conformance --baseline`: a case that gets worse fails the run, one that
gets better asks for the baseline to be updated, a missing case fails."""
import os
import subprocess

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from test_zoo import KILN


def write_case(root, name, expected):
    """A one-Add node test whose expected output is `expected` (x + 1 is right)."""
    d = os.path.join(root, name)
    os.makedirs(os.path.join(d, "test_data_set_0"))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])
    one = numpy_helper.from_array(np.ones(3, np.float32), "one")
    g = helper.make_graph([helper.make_node("Add", ["x", "one"], ["y"])], name, [x], [y], [one])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), os.path.join(d, "model.onnx"))
    xs = np.array([1, 2, 3], np.float32)
    for fname, arr in (("input_0.pb", xs), ("output_0.pb", np.asarray(expected, np.float32))):
        with open(os.path.join(d, "test_data_set_0", fname), "wb") as f:
            f.write(numpy_helper.from_array(arr).SerializeToString())


def conformance(root, *args):
    return subprocess.run([KILN, "conformance", str(root), "--jobs", "1", *map(str, args)],
                          capture_output=True, text=True)


def test_baseline_catches_regressions(tmp_path):
    root = tmp_path / "cases"
    write_case(root, "test_add_right", [2, 3, 4])
    write_case(root, "test_add_wrong", [2, 3, 5])  # kiln (correctly) fails this one
    base = tmp_path / "expected.txt"

    r = conformance(root, "--write-baseline", base)
    assert r.returncode == 0, r.stdout + r.stderr
    text = base.read_text()
    assert "test_add_right passed" in text
    assert "test_add_wrong failed" in text
    assert conformance(root, "--baseline", base).returncode == 0

    # The baseline claims the wrong case passes: the run is worse and fails.
    base.write_text(text.replace("test_add_wrong failed", "test_add_wrong passed"))
    r = conformance(root, "--baseline", base)
    assert r.returncode == 1, r.stdout
    assert "WORSE than the baseline: test_add_wrong: passed -> failed" in r.stdout, r.stdout

    # A case that got better passes the run and asks for an update.
    base.write_text(text.replace("test_add_right passed", "test_add_right unsupported"))
    r = conformance(root, "--baseline", base)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "better than the baseline: test_add_right: unsupported -> passed" in r.stdout
    assert "--write-baseline" in r.stdout

    # A case the baseline lists but the run lacks (fixture incomplete) fails.
    base.write_text(text + "test_gone passed\n")
    r = conformance(root, "--baseline", base)
    assert r.returncode == 1 and "MISSING from the run: test_gone" in r.stdout, r.stdout

    base.write_text("test_add_right maybe\n")
    r = conformance(root, "--baseline", base)
    assert r.returncode == 1 and "'maybe' is not passed, failed or unsupported" in r.stderr, r.stderr
