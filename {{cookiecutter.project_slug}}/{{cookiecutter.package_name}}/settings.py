"""All configuration, read from the environment (and `.env`) and validated at start-up."""

import os
from functools import cache
from pathlib import Path
from typing import Annotated

from dotenv import dotenv_values
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", env_ignore_empty=True)

    llm_model: str = "{{ cookiecutter.default_model }}"
    """Default model, any LiteLLM model string (`provider/model`)."""
    llm_models: Annotated[list[str], NoDecode] = []
    """Models a request may pick (comma-separated); the default model is always allowed."""
    llm_api_base: str | None = None
    """Base URL of the provider's API, for self-hosted or OpenAI-compatible servers."""
    llm_api_key: SecretStr | None = None
    """Overrides the provider's usual key variable (e.g. OPENAI_API_KEY)."""
    llm_timeout_s: float = Field(default=60.0, gt=0)
    """Upper bound for connecting to the provider and for each read from it."""
    max_request_bytes: int = Field(default=1_000_000, gt=0)
    sse_heartbeat_s: float = Field(default=15.0, gt=0)
    """Seconds of silence after which the stream sends a `: ping` comment."""
    ui_flush_ms: int = Field(default=50, ge=0)
    """The UI pushes streamed text to the browser at most once per this many milliseconds."""
    api_url: str | None = None
    """Where the UI finds the API; unset means the API mounted in the UI's own backend."""

    @field_validator("llm_models", mode="before")
    @classmethod
    def _split_models(cls, value: object) -> object:
        if isinstance(value, str):
            return [model.strip() for model in value.split(",") if model.strip()]
        return value

    @property
    def allowed_models(self) -> list[str]:
        return [self.llm_model, *(m for m in self.llm_models if m != self.llm_model)]


@cache
def get_settings() -> Settings:
    load_provider_env(Path(".env"))
    return Settings()


def load_provider_env(env_file: Path) -> None:
    """Export `.env` to os.environ: LiteLLM reads provider keys (OPENAI_API_KEY, ...) there.

    The process environment wins over the file, and an empty line in the file (`KEY=`) means
    unset, so a blank key is reported missing instead of being sent to the provider.
    """
    for key, value in dotenv_values(env_file).items():
        if value and key not in os.environ:
            os.environ[key] = value
