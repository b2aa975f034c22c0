"""A conversation's title from the model (`titles`), with real LiteLLM against the fake
provider: what the model says is cleaned into a title; a failure leaves none."""

import pytest

from {{ cookiecutter.package_name }}.settings import Settings
from {{ cookiecutter.package_name }}.titles import cleaned, suggest_title

from .conftest import FAKE_KEY


@pytest.mark.parametrize(
    ("said", "title"),
    [
        ('Title: "Rivers of the Alps"', "Rivers of the Alps"),
        ("**Dragon stories**.\nHere is why: ...", "Dragon stories"),
        ("  \n'Reverse a string in Python'  ", "Reverse a string in Python"),
        ("word " * 20, "word " * 11 + "word…"),
        ('""', None),
    ],
)
def test_what_the_model_says_is_cleaned_into_a_title(said, title):
    assert cleaned(said) == title


async def test_the_model_names_a_conversation_and_a_failure_names_none(upstream):
    settings = Settings(llm_api_base=upstream.base_url, llm_api_key=FAKE_KEY, llm_timeout_s=3)
    question = "Write a long story about dragons"

    named = await suggest_title(question, "anthropic/fake-fast", settings)
    failed = await suggest_title(question, "openai/fake-500", settings)

    assert named == "long story about dragons" == upstream.titles[-1]
    assert failed is None
