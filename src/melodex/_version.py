"""The package version, importable without importing the package's heavy parts."""

__version__ = "0.1.0"
