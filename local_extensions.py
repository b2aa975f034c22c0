"""Jinja extensions cookiecutter loads for this template (`_extensions` in cookiecutter.json)."""

import os
from pathlib import Path

from jinja2.ext import Extension

from providers import PROVIDERS

# Resolved at import, which cookiecutter does from the directory it was started in, so this
# holds however the template was named: `.`, a relative path, or a `gh:` clone.
TEMPLATE_DIR = Path(__file__).resolve().parent
# Read at the same moment, before cookiecutter changes directory or starts a hook: the folder
# the user ran cookiecutter from, which `-o` is relative to. (Hooks run in the new project,
# and $PWD is stale when cookiecutter was started with a `cwd=` but no shell.)
START_DIR = os.getcwd()


class TemplateDir(Extension):
    """Exposes `template_dir`, so hooks can import `hooks/bake_rules.py` and `providers.py`,
    `providers`, the table of providers (`providers.py`), to every template, and `start_dir`,
    the folder cookiecutter was run from, so the next steps can `cd` from there.

    Hooks run from the new project's folder, where a relative `cookiecutter._repo_dir`
    (as `cookiecutter .` gives) no longer points at the template.
    """

    def __init__(self, environment):
        super().__init__(environment)
        environment.globals["template_dir"] = str(TEMPLATE_DIR)
        environment.globals["providers"] = PROVIDERS
        environment.globals["start_dir"] = START_DIR
