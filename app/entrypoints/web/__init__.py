"""The web pages' files: the HTML shell all pages share in ``pages/``, CSS and ES
modules in ``static/``."""
