"""Stop the bake before anything is written when an answer is invalid."""

import json
import sys

REPO_DIR = {{ cookiecutter._repo_dir | tojson }}
sys.path.insert(0, f"{REPO_DIR}/hooks")

from bake_rules import load_choices, validate  # noqa: E402

answers = json.loads(r"""{{ cookiecutter | tojson }}""")
problems = validate(answers, load_choices(REPO_DIR))
if problems:
    for problem in problems:
        print(f"ERROR: {problem}", file=sys.stderr)
    sys.exit(1)
