"""Shape the baked project to the answers and print what to run next."""

import json
import sys
from pathlib import Path

TEMPLATE_DIR = {{ template_dir | tojson }}  # from local_extensions.py
sys.path.insert(0, f"{TEMPLATE_DIR}/hooks")

from bake_rules import next_steps, prune_unselected_adapters, write_env_file  # noqa: E402

answers = json.loads(r"""{{ cookiecutter | tojson }}""")
project_dir = Path.cwd()
prune_unselected_adapters(project_dir, answers["package_name"], answers["framework"])
write_env_file(project_dir)
print(next_steps(answers))
