"""Excentra: a centralized crypto-exchange backend (see README.md)."""

__version__ = "0.1.0"
