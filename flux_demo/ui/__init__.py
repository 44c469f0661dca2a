"""The Gradio UI: one module per tab; `create_demo` wires them into one Blocks app."""

from flux_demo.ui.app import create_demo, launch_options

__all__ = ["create_demo", "launch_options"]
