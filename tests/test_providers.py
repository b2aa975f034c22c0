"""Each provider's bake names exactly what LiteLLM needs to reach its default model."""

import json
import os
import subprocess
import sys

from providers import PROVIDERS

from .conftest import VARIABLES

# Run in a clean process: LiteLLM reads the environment, and importing it costs seconds.
MISSING_WITH_ENV_EXAMPLE = """
import json, os, sys
import litellm
missing = {}
for provider, (model, variables) in json.loads(sys.argv[1]).items():
    os.environ.update(variables)
    # As the app checks it (llm.py): LLM_API_KEY and LLM_API_BASE stand in for the provider's.
    checked = litellm.validate_environment(
        model=model, api_key=variables.get("LLM_API_KEY"), api_base=variables.get("LLM_API_BASE")
    )
    missing[provider] = checked["missing_keys"]
    for name in variables:
        del os.environ[name]
print(json.dumps(missing))
"""


def env_example_variables(bake) -> dict[str, str]:
    lines = (bake.project_path / ".env.example").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line and not line.startswith("#"))
    return {name: value or "placeholder" for name, value in pairs}


def test_the_table_covers_every_provider_choice():
    assert list(PROVIDERS) == VARIABLES["llm_provider"]


def test_env_example_has_every_variable_litellm_needs(bake):
    cases = {}
    for provider in PROVIDERS:
        result = bake(llm_provider=provider)
        assert result.exit_code == 0, result.exception
        cases[provider] = (result.context["default_model"], env_example_variables(result))
    clean_env = {
        key: value
        for key, value in os.environ.items()
        if not key.endswith(("_KEY", "_API_BASE", "_API_VERSION")) and not key.startswith("AWS_")
    }
    clean_env |= {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_MODE": "PRODUCTION"}
    done = subprocess.run(
        [sys.executable, "-c", MISSING_WITH_ENV_EXAMPLE, json.dumps(cases)],
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    missing = {
        provider: keys
        for provider, keys in json.loads(done.stdout.splitlines()[-1]).items()
        if keys
    }
    assert missing == {}
