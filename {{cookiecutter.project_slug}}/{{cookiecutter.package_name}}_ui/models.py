"""How the page names a model: a label people read. LiteLLM's model string stays visible on
hover in the picker and in the line under each answer."""

import dataclasses
from urllib.parse import urlsplit

from {{ cookiecutter.package_name }}.llm import is_embedded

# LiteLLM's provider prefixes as people know the providers, and the app's own embedded model.
PROVIDER_NAMES = {
    "anthropic": "Anthropic",
    "azure": "Azure OpenAI",
    "bedrock": "AWS Bedrock",
    "cohere": "Cohere",
    "deepseek": "DeepSeek",
    "fireworks_ai": "Fireworks AI",
    "gemini": "Google Gemini",
    "groq": "Groq",
    "huggingface": "Hugging Face",
    "local": "offline",
    "mistral": "Mistral",
    "ollama": "Ollama",
    "ollama_chat": "Ollama",
    "openai": "OpenAI",
    "openrouter": "OpenRouter",
    "perplexity": "Perplexity",
    "together_ai": "Together AI",
    "vertex_ai": "Vertex AI",
    "xai": "xAI",
}
HOSTED_MODEL_HINT = "For a hosted model, set LLM_MODEL and its API key in .env and restart."


@dataclasses.dataclass
class ModelChoice:
    value: str  # LiteLLM's model string
    label: str

    @classmethod
    def of(cls, model: str, api_base: str | None) -> "ModelChoice":
        return cls(value=model, label=label(model, api_base))


def label(model: str, api_base: str | None = None) -> str:
    """`openai/gpt-4.1-mini` reads as `gpt-4.1-mini (OpenAI)`; with `LLM_API_BASE` set, as
    served by that host (`llama-3.1-8b (localhost:8000)`): a vLLM or LM Studio server is not
    OpenAI."""
    provider, _, name = model.partition("/")
    if not name:
        return model
    if api_base and not is_embedded(model):
        return f"{name} ({urlsplit(api_base).netloc or api_base})"
    return f"{name} ({PROVIDER_NAMES.get(provider, provider)})"


def who_answers(model: str, api_base: str | None = None) -> str:
    """The empty page's line on the model: for the embedded one, what to expect of it."""
    if not model:
        return ""
    if is_embedded(model):
        return (
            f"{label(model)} answers: a tiny model running on this machine, with no key and "
            f"no network. It is quick, and often wrong. {HOSTED_MODEL_HINT}"
        )
    return f"{label(model, api_base)} answers."
