"""Offline FLUX models: random tiny twins for fast tests and the trained nano family."""
