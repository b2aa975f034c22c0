"""Configuration: lists, the model allow-list, refusals at start-up, and `.env` for LiteLLM."""

import os
import re

import pytest
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.settings import Settings, load_provider_env


def test_lists_are_comma_separated_and_the_default_model_comes_first_once(monkeypatch):
    monkeypatch.setenv("LLM_MODEL", "openai/b")
    monkeypatch.setenv("LLM_MODELS", " openai/a, openai/b ,,anthropic/c ")
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example,https://b.example")
    settings = Settings()
    assert settings.allowed_models == ["openai/b", "openai/a", "anthropic/c"]
    assert settings.cors_origins == ["https://a.example", "https://b.example"]


def test_an_empty_variable_means_the_default(monkeypatch):
    monkeypatch.setenv("LLM_MODEL", "")
    monkeypatch.setenv("API_TOKEN", "")
    settings = Settings()
    assert settings.llm_model == Settings.model_fields["llm_model"].default
    assert settings.api_token is None


@pytest.mark.parametrize(
    ("name", "value"),
    [("RATE_LIMIT", "lots"), ("MAX_TOKENS", "0"), ("LLM_TIMEOUT_S", "-1"), ("UI_FLUSH_MS", "x")],
)
def test_a_bad_value_stops_start_up_naming_the_setting(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name.lower()):
        Settings()


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("ANSWER_IMAGE_HOSTS", "https://images.example.com", "not a host: https://images"),
        ("ANSWER_IMAGE_HOSTS", "images.example.com/cats", "not a host: images.example.com/cats"),
        ("FRAME_ANCESTORS", "portal.example.com", "not an origin: portal.example.com"),
        ("FRAME_ANCESTORS", "https://a.example; script-src *", "not an origin: https://a.example;"),
        ("ATTACHMENT_TYPES", "image/png, pdf", "not a file type the app reads: pdf"),
        ("ATTACHMENT_TYPES", "application/*", "not a file type the app reads: application/*"),
    ],
)
def test_hosts_origins_and_media_types_must_be_what_they_say(monkeypatch, name, value, says):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=re.escape(says)):
        Settings()


def test_attachment_types_are_types_of_the_kinds_the_app_reads(monkeypatch):
    monkeypatch.setenv("ATTACHMENT_TYPES", "Image/PNG, text/*, application/pdf")
    assert Settings().attachment_types == ["image/png", "text/*", "application/pdf"]


def test_image_hosts_may_have_ports_and_wildcard_subdomains(monkeypatch):
    monkeypatch.setenv("ANSWER_IMAGE_HOSTS", "Images.Example.com, *.cdn.example:8443")
    assert Settings().answer_image_hosts == ["images.example.com", "*.cdn.example:8443"]


def test_an_unknown_tool_stops_start_up_naming_the_tools_there_are(monkeypatch):
    monkeypatch.setenv("TOOLS", "calculate, search_web")
    with pytest.raises(
        ValidationError, match=re.escape("no tool named search_web; tools.py has: calculate")
    ):
        Settings()


def test_secrets_are_not_shown_when_settings_are_printed(monkeypatch):
    monkeypatch.setenv("API_TOKEN", "s3cret-token")
    monkeypatch.setenv("UI_PASSWORD", "s3cret-password")
    assert "s3cret" not in repr(Settings())


def test_provider_keys_come_from_env_file_unless_set_or_blank(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("STREAM_TEST_A=from-file\nSTREAM_TEST_B=from-file\nSTREAM_TEST_C=\n")
    monkeypatch.setenv("STREAM_TEST_B", "from-process")
    monkeypatch.delenv("STREAM_TEST_A", raising=False)
    monkeypatch.delenv("STREAM_TEST_C", raising=False)
    load_provider_env(env_file)
    assert os.environ["STREAM_TEST_A"] == "from-file"
    assert os.environ["STREAM_TEST_B"] == "from-process"
    assert "STREAM_TEST_C" not in os.environ
    monkeypatch.delenv("STREAM_TEST_A")  # load_provider_env set it outside monkeypatch
