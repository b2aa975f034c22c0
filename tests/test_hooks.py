"""The bake rules the hooks run, tested directly (hooks run as subprocesses, out of reach)."""

from pathlib import Path

import bake_rules
import pytest

from .conftest import TEMPLATE_DIR

GOOD = {
    "project_name": "Stream Chat",
    "project_slug": "stream-chat",
    "package_name": "stream_chat",
    "author_email": "you@example.com",
    "default_model": "openai/gpt-4.1-mini",
    "framework": "fastapi",
    "llm_provider": "openai",
    "python_version": "3.11",
}
CHOICES = bake_rules.load_choices(TEMPLATE_DIR)


def test_good_answers_pass():
    assert bake_rules.validate(GOOD, CHOICES) == []


def test_choices_come_from_cookiecutter_json():
    assert CHOICES["framework"][0] == "fastapi"
    assert "openai_compatible" in CHOICES["llm_provider"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("project_name", "  "),
        ("project_slug", "Stream Chat"),
        ("project_slug", "stream--chat"),
        ("package_name", "stream-chat"),
        ("package_name", "1chat"),
        ("package_name", "class"),
        ("package_name", "json"),
        ("package_name", "reflex"),
        ("author_email", "not-an-email"),
        ("default_model", "gpt 4"),
        ("framework", "rails"),
        ("llm_provider", "skynet"),
        ("python_version", "2.7"),
    ],
)
def test_each_bad_answer_is_named(variable, value):
    problems = bake_rules.validate({**GOOD, variable: value}, CHOICES)
    assert len(problems) == 1
    assert problems[0].startswith(variable)


def test_choice_problem_lists_the_allowed_values():
    (problem,) = bake_rules.validate({**GOOD, "llm_provider": "skynet"}, CHOICES)
    assert all(provider in problem for provider in CHOICES["llm_provider"])


def test_existing_env_file_is_kept(tmp_path):
    (tmp_path / ".env.example").write_text("A=example\n")
    (tmp_path / ".env").write_text("A=mine\n")
    bake_rules.write_env_file(tmp_path)
    assert (tmp_path / ".env").read_text() == "A=mine\n"


def test_cd_path_is_relative_inside_the_start_dir_else_absolute():
    project = Path("/home/u/work/out/stream-chat")
    assert bake_rules.cd_path(project, "/home/u/work") == "out/stream-chat"
    assert bake_rules.cd_path(project, "/home/u/elsewhere") == str(project)
    assert bake_rules.cd_path(Path("/tmp/a b/stream-chat"), "/tmp") == "'a b/stream-chat'"
