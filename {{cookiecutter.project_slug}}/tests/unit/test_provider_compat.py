"""The private names of LiteLLM and the OpenAI SDK the fast stream path takes (`litellm_compat`,
`openai_compat`) are there, in the versions they were checked against. After an upgrade, a
failure here says which module to check again: the app would fall back to LiteLLM's public
path (see `tests/test_fast_stream.py`), at about twice the CPU per token."""

from importlib.metadata import version

import pytest

from {{ cookiecutter.package_name }} import litellm_compat, llm, openai_compat


@pytest.mark.parametrize(
    ("module", "package"), [(litellm_compat, "litellm"), (openai_compat, "openai")]
)
def test_the_compat_module_was_checked_against_the_installed_package(module, package):
    llm.litellm()  # as at start-up: LiteLLM loaded first
    assert module.missing_internals() == [], f"{package} {version(package)}"
    assert version(package) == module.WRITTEN_FOR, (
        f"{package} is {version(package)}: check {module.__name__}.py's names against it "
        f"(tests/test_fast_stream.py compares the two paths), then set WRITTEN_FOR"
    )
