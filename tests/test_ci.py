"""The GitHub workflow runs every template test: each job's `-k "<suite> or not baked"` keeps
the tests that name no baked suite and those of its own suite, so a baked test that no job's
suite names would never run on GitHub."""

import subprocess
import sys

import yaml

from .conftest import TEMPLATE_DIR

WORKFLOW = TEMPLATE_DIR / ".github" / "workflows" / "template.yml"


def test_the_github_jobs_between_them_run_every_test():
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    suites = jobs["bake-and-test"]["strategy"]["matrix"]["suite"]
    collect = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(collect, cwd=TEMPLATE_DIR, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
    baked = [line for line in done.stdout.splitlines() if "::" in line and "baked" in line]
    assert baked, "no baked test collected"
    unselected = [test for test in baked if not any(suite in test for suite in suites)]
    assert not unselected, f"no job of {WORKFLOW.name} runs {unselected}"
