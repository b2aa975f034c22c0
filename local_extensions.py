"""Jinja extensions cookiecutter loads for this template (`_extensions` in cookiecutter.json)."""

from pathlib import Path

from jinja2.ext import Extension

from providers import PROVIDERS

# Resolved at import, which cookiecutter does from the directory it was started in, so this
# holds however the template was named: `.`, a relative path, or a `gh:` clone.
TEMPLATE_DIR = Path(__file__).resolve().parent


class TemplateDir(Extension):
    """Exposes `template_dir`, so hooks can import `hooks/bake_rules.py` and `providers.py`,
    and `providers`, the table of providers (`providers.py`), to every template.

    Hooks run from the new project's folder, where a relative `cookiecutter._repo_dir`
    (as `cookiecutter .` gives) no longer points at the template.
    """

    def __init__(self, environment):
        super().__init__(environment)
        environment.globals["template_dir"] = str(TEMPLATE_DIR)
        environment.globals["providers"] = PROVIDERS
