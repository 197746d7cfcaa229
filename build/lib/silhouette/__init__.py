"""Silhouette: serverless analysis of photos of people."""

__version__ = "0.1.0"
