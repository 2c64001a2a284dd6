"""emsbox: an open-source energy management system in a box."""

__version__ = "0.1.0"
