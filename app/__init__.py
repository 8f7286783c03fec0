"""Fovea: a DICOMweb origin server."""

__version__ = "0.1.0"
