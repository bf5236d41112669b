"""The `kiln` console script: runs the CLI binary the wheel carries (kiln/bin/kiln)."""
from __future__ import annotations

import os
import sys


def executable() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", "kiln")


def main() -> None:
    exe = executable()
    if not os.path.exists(exe):
        sys.stderr.write(f"kiln: error: the CLI is not in this installation ({exe}); build it with "
                         "`cmake --build build --target kiln_cli` or `pip install .`\n")
        sys.exit(1)
    os.execv(exe, [exe] + sys.argv[1:])


if __name__ == "__main__":
    main()
