import json
import sys
from pathlib import Path

import pytest

TEMPLATE_DIR = Path(__file__).resolve().parent.parent
VARIABLES = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())
# The hooks import their rules as a top-level module; the tests do too.
sys.path.insert(0, str(TEMPLATE_DIR / "hooks"))


@pytest.fixture
def bake(cookies):
    """Bake with overrides, refusing keys cookiecutter.json lacks (cookiecutter ignores them)."""

    def bake(**overrides):
        unknown = set(overrides) - set(VARIABLES)
        assert not unknown, f"not template variables: {unknown}"
        return cookies.bake(extra_context=overrides)

    return bake
