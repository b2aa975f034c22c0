import reflex as rx
from reflex.plugins.sitemap import SitemapPlugin

from {{ cookiecutter.package_name }}.settings import get_settings

config = rx.Config(
    app_name="{{ cookiecutter.package_name }}_ui",
    telemetry_enabled=False,
    # White on Radix's default blue is 3.2:1; on indigo, over 4.5:1.
    plugins=[rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="indigo"))],
    disable_plugins=[SitemapPlugin],
    # The badge is fixed over the bottom-right corner, where the Send and Stop button is.
    show_built_with_reflex=False,
    # With Redis, the UI's state is shared by every process, so `prod` runs several workers.
    redis_url=get_settings().redis_url,
)
