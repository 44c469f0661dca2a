"""FLUX demo: cached diffusers pipelines, offline tiny twins and a Gradio UI."""

__version__ = "0.1.0"
