"""The HTTP API, on the framework chosen at bake time ({{ cookiecutter.framework }})."""
{% if cookiecutter.framework == "flask" %}
from .flask_app import create_app
from .wsgi import UI_COMMANDS, UI_OPTIONS, run_ui, serve

__all__ = ["UI_COMMANDS", "UI_OPTIONS", "create_app", "run_ui", "serve"]
{%- else %}
from .asgi import UI_COMMANDS, UI_OPTIONS, mount_into_reflex, run_ui, serve
from .{{ cookiecutter.framework }}_app import create_app

__all__ = ["UI_COMMANDS", "UI_OPTIONS", "create_app", "mount_into_reflex", "run_ui", "serve"]
{%- endif %}
