"""Under CI=true, "none skipped" is enforced: a skipped test that needs Docker, the model, a memory cgroup,
a browser or a mount fails the run (CI has them all; a skip there means something is broken). Skips
elsewhere, and every skip outside CI, stay skips."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

MUST_RUN_IN_CI = {"docker", "model", "cgroup", "browser", "mount"}


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and _in_ci()) or hasattr(report, "wasxfail"):
        return
    marks = MUST_RUN_IN_CI & {mark.name for mark in item.iter_markers()}
    if marks:
        report.outcome = "failed"
        report.longrepr = (
            f"skipped under CI=true, but a {'/'.join(sorted(marks))} test must run there: {_skip_reason(report)}"
        )


def _module_marks(path: Path) -> set[str]:
    """The marks a module declares for all its tests (``pytestmark = ...``), read from its source: a module
    skipped while importing never gets as far as declaring them."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return set()
    marks = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            for sub in ast.walk(node.value):
                if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Attribute) and sub.value.attr == "mark":
                    marks.add(sub.attr)
    return marks


_skipped_modules: list[str] = []


def pytest_collectreport(report):
    if not (report.skipped and _in_ci()):
        return
    path = Path(str(report.fspath))
    marks = MUST_RUN_IN_CI & _module_marks(path) if path.suffix == ".py" else set()
    if marks:
        _skipped_modules.append(f"{report.nodeid} ({'/'.join(sorted(marks))}): {_skip_reason(report)}")


def pytest_terminal_summary(terminalreporter):
    for line in _skipped_modules:
        terminalreporter.write_line(f"FAILED (skipped under CI=true, must run there) {line}", red=True)


def pytest_sessionfinish(session, exitstatus):
    if _skipped_modules and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
