"""FLUX demo: `python app.py` serves the app (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT are honoured)."""

import spaces  # noqa: F401  # must be imported before torch so ZeroGPU can patch CUDA

from flux_demo.ui import create_demo, launch_options

demo = create_demo()

if __name__ == "__main__":
    demo.launch(**launch_options(demo))
