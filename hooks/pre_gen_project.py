"""Stop the bake before anything is written when an answer is invalid."""

import json
import sys

TEMPLATE_DIR = {{ template_dir | tojson }}  # from local_extensions.py
sys.path[:0] = [f"{TEMPLATE_DIR}/hooks", TEMPLATE_DIR]

from bake_rules import load_choices, validate  # noqa: E402

answers = json.loads(r"""{{ cookiecutter | tojson }}""")
problems = validate(answers, load_choices(TEMPLATE_DIR))
if problems:
    for problem in problems:
        print(f"ERROR: {problem}", file=sys.stderr)
    sys.exit(1)
