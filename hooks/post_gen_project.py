"""Shape the baked project to the answers and print what to run next."""

import json
import sys
from pathlib import Path

TEMPLATE_DIR = {{ template_dir | tojson }}  # from local_extensions.py
START_DIR = {{ start_dir | tojson }}  # where cookiecutter was run from
sys.path[:0] = [f"{TEMPLATE_DIR}/hooks", TEMPLATE_DIR]

from bake_rules import (  # noqa: E402
    cd_path,
    next_steps,
    prune_unselected_adapters,
    prune_unselected_provider,
    write_env_file,
)

answers = json.loads(r"""{{ cookiecutter | tojson }}""")
project_dir = Path.cwd()
prune_unselected_adapters(project_dir, answers["package_name"], answers["framework"])
prune_unselected_provider(project_dir, answers["package_name"], answers["llm_provider"])
write_env_file(project_dir)
print(next_steps(answers, cd_path(project_dir, START_DIR)))
