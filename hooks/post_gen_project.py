"""Shape the baked project to the answers and print what to run next."""

import json
import sys
from pathlib import Path

REPO_DIR = {{ cookiecutter._repo_dir | tojson }}
sys.path.insert(0, f"{REPO_DIR}/hooks")

from bake_rules import next_steps, prune_unselected_adapters, write_env_file  # noqa: E402

answers = json.loads(r"""{{ cookiecutter | tojson }}""")
project_dir = Path.cwd()
prune_unselected_adapters(project_dir, answers["package_name"], answers["framework"])
write_env_file(project_dir)
print(next_steps(answers))
