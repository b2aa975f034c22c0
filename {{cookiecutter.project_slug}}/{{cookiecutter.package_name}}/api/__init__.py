"""The HTTP API, on the framework chosen at bake time ({{ cookiecutter.framework }})."""
{% if cookiecutter.framework == "flask" %}
from .flask_app import create_app
from .wsgi import serve

__all__ = ["create_app", "serve"]
{%- else %}
from .asgi import mount_into_reflex, serve
from .{{ cookiecutter.framework }}_app import create_app

__all__ = ["create_app", "mount_into_reflex", "serve"]
{%- endif %}
