"""{{ cookiecutter.description }}"""

import logging

# The app's own log lines (a missing key at start-up, the access log) go to stderr once each,
# however the app is started (`api`, `dev`, `prod`) and whatever logging the framework sets up.
_logger = logging.getLogger(__name__)
_handler = logging.StreamHandler()
_handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s %(message)s"))
_logger.addHandler(_handler)
_logger.setLevel(logging.INFO)
_logger.propagate = False
