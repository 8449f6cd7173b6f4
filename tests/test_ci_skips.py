"""The conftest hook: under CI=true a skipped docker/model/cgroup/browser/mount test fails the run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

SKIPS = """
import pytest

@pytest.mark.docker
def test_needs_docker():
    pytest.skip("no engine here")

@pytest.mark.browser
@pytest.mark.skipif(True, reason="no chromium here")
def test_needs_a_browser():
    pass

def test_a_plain_skip():
    pytest.skip("fine anywhere")

def test_passes():
    pass
"""

MODULE_SKIP = """
import pytest

pytest.importorskip("no_such_module_anywhere")
pytestmark = pytest.mark.model

def test_never_collected():
    pass
"""

PLAIN = """
import pytest

def test_a_plain_skip():
    pytest.skip("fine anywhere")
"""


def run(tmp_path: Path, modules: dict[str, str], ci: bool) -> subprocess.CompletedProcess:
    shutil.copy(HERE / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    docker\n    browser\n    model\n")
    for name, text in modules.items():
        (tmp_path / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_outside_ci_every_skip_is_a_skip(tmp_path):
    done = run(tmp_path, {"test_skips.py": SKIPS, "test_module.py": MODULE_SKIP}, ci=False)
    assert done.returncode == 0, done.stdout
    assert "1 passed, 4 skipped" in done.stdout


def test_under_ci_a_skipped_test_that_needs_the_real_thing_fails_the_run(tmp_path):
    done = run(tmp_path, {"test_skips.py": SKIPS, "test_module.py": MODULE_SKIP}, ci=True)
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout
    # a skip in the test fails it; a skip at set-up (skipif, a fixture) fails its set-up: an error
    assert "1 failed, 1 passed, 2 skipped, 1 error" in done.stdout
    assert "FAILED test_skips.py::test_needs_docker" in done.stdout
    assert "ERROR test_skips.py::test_needs_a_browser" in done.stdout
    assert "must run there) test_module.py (model)" in done.stdout


def test_under_ci_other_skips_stay_skips(tmp_path):
    done = run(tmp_path, {"test_plain.py": PLAIN}, ci=True)
    assert done.returncode == 0, done.stdout
    assert "1 skipped" in done.stdout
