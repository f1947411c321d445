"""The single source of Veilnet's version number.
Read by the build backend and by ``veil --version``."""

__version__ = "0.1.0"
