#!/usr/bin/env python3
"""Runs pytest (arguments passed through) and fails when anything was skipped
that tests/models/allowed_skips.txt does not list, or when nothing ran.

ctest only sees pytest's exit code, and pytest exits 0 when tests skip: a
missing fixture or package would turn a test off with the run still green.
"""
import fnmatch
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def allowed_patterns():
    pats = []
    with open(os.path.join(HERE, "allowed_skips.txt")) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                pats.append(line)
    return pats


class SkipCollector:
    def __init__(self):
        self.skipped = []
        self.ran = 0

    def pytest_runtest_logreport(self, report):
        if report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            self.skipped.append((report.nodeid, reason))
        elif report.when == "call":
            self.ran += 1


def main():
    collector = SkipCollector()
    rc = pytest.main(sys.argv[1:], plugins=[collector])
    patterns = allowed_patterns()
    unexpected = [(n, r) for n, r in collector.skipped
                  if not any(fnmatch.fnmatch(os.path.basename(n.split("::")[0]) + "::" + n.split("::", 1)[-1], p)
                             for p in patterns)]
    print(f"run_pytest: {collector.ran} tests ran, {len(collector.skipped)} skipped "
          f"({len(collector.skipped) - len(unexpected)} on the allow-list)")
    for nodeid, reason in unexpected:
        print(f"run_pytest: UNEXPECTED SKIP {nodeid}: {reason}")
    if unexpected:
        print("run_pytest: a skip hides a test; fix its cause, or list it with a reason in "
              "tests/models/allowed_skips.txt")
        return 1
    if collector.ran == 0:
        print("run_pytest: no test ran")
        return 1
    return int(rc)


if __name__ == "__main__":
    sys.exit(main())
