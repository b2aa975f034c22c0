"""The HTTP API, on the framework chosen at bake time ({{ cookiecutter.framework }})."""

from .{{ cookiecutter.framework }}_app import create_app

__all__ = ["create_app"]
