"""The web pages' files: HTML shells in ``pages/``, CSS and ES modules in ``static/``."""
