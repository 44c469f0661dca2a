import asyncio
import concurrent.futures

import gradio as gr

from flux_demo.ui.endpoints import Final, finish_on_final


def test_a_generator_whose_first_yield_is_final_completes_like_a_plain_function():
    """Gradio would send a one-yield generator's outputs twice (as "generating", then again as the
    completed result) and gradio_client downloads the files of both; `Final` outputs are sent once."""
    finish_on_final()
    ran_to_end = []

    def once(x):
        yield Final((x + 1, x + 2))
        ran_to_end.append(True)

    def previews(x):
        yield x, x
        yield Final((x + 1, x + 2))

    with gr.Blocks() as demo:
        number, a, b = gr.Number(), gr.Number(), gr.Number()
        gr.Button().click(once, number, [a, b], api_name="once")
        gr.Button().click(previews, number, [a, b], api_name="previews")

    def first_call(api_name):
        fn = next(f for f in demo.fns.values() if f.api_name == api_name)
        # A thread of its own: a browser test earlier in the session may leave an event loop running here.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, demo.process_api(block_fn=fn, inputs=[1], state=None)).result()

    once_result = first_call("once")
    assert once_result["data"] == [2, 3] and not once_result["is_generating"]
    assert once_result["iterator"] is None and ran_to_end == [True]
    previews_result = first_call("previews")  # a preview first: Gradio streams as usual
    assert previews_result["data"] == [1, 1] and previews_result["is_generating"]
