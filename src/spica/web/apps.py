"""Django application of the operation interface."""

from django.apps import AppConfig


class SpicaWebConfig(AppConfig):
    """The ``spica.web`` application (label ``spica_web``)."""

    name = "spica.web"
    label = "spica_web"
    verbose_name = "SPICA operation interface"
