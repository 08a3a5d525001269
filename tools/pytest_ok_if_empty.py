"""Run pytest with the given arguments; 'no tests collected' (exit 5) counts as success."""

import sys

import pytest

if __name__ == "__main__":
    code = pytest.main(sys.argv[1:])
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        print("pytest collected no tests: nothing to check here")
        code = 0
    sys.exit(int(code))
