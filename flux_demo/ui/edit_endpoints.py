"""The Edit tab's endpoints: `/edit` (klein with 1-10 references), `/img2img` (FLUX.1) and `/inpaint`
(klein). Their docstrings describe them to API and MCP callers; the checks are `editing.validate_edit`'s."""

from __future__ import annotations

import gradio as gr

from flux_demo import editing
from flux_demo.services import AppServices
from flux_demo.ui.endpoints import endpoint, one_image, with_references
from flux_demo.ui.widgets import named_png


def make_handlers(services: AppServices):
    """The `/edit`, `/img2img` and `/inpaint` handlers, bound to `services`."""

    def edited(request: editing.EditRequest, run):
        valid = editing.validate_edit(request, services.model_keys)
        run.notes(valid.notes)
        result = editing.run_edit(services.backend, valid, run.progress, run.stopped)
        return named_png(result.image, valid.settings(), services.settings), valid.seed, result.details

    @endpoint(services, "edit", cost=with_references, outputs=3)
    def edit(
        prompt: str,
        references: list,
        model: str,
        seed: float,
        randomize_seed: bool,
        steps: float,
        width: float,
        height: float,
        run=gr.Progress(),
    ):
        """Edit or combine 1-10 reference images with FLUX.2 [klein]; the prompt refers to them by number.

        Args:
            prompt: What to make, e.g. "put the cat from image 2 on the sofa from image 1"; 1-2000 characters.
            references: 1-10 image files (PNG, JPEG or WebP; 64-4096 px a side, aspect up to 8:1), in order.
            model: A model key that offers reference editing, e.g. "klein".
            seed: Noise seed, an integer 0-4294967295.
            randomize_seed: If true, a fresh random seed is drawn and returned.
            steps: Denoising steps, within the model's range (klein 1-16).
            width: Output width, 64-2048 (snapped to 16), or 0 for the first reference's size.
            height: Output height, 64-2048 (snapped to 16), or 0 for the first reference's size.

        Returns:
            The PNG (with settings, mode and the references' SHA-256 as text metadata), the seed used, and
            details (size used, number of references, seconds).
        """
        request = editing.EditRequest(
            prompt, model, "edit", references, None, None, steps, None, seed, randomize_seed, width, height
        )
        return edited(request, run)

    @endpoint(services, "edit", cost=one_image, outputs=3)
    def img2img(
        prompt: str,
        image: str,
        model: str,
        strength: float,
        seed: float,
        randomize_seed: bool,
        steps: float,
        guidance: float,
        width: float,
        height: float,
        run=gr.Progress(),
    ):
        """Image-to-image with FLUX.1 [schnell] or [dev]: redraw an image following the prompt.

        Args:
            prompt: What the image should become; 1-2000 characters.
            image: The input image file (PNG, JPEG or WebP; 64-4096 px a side, aspect up to 8:1).
            model: A model key that offers img2img, e.g. "schnell" or "dev".
            strength: 0.05-1.0; how much to change (1.0 ignores the image). About steps × strength steps run.
            seed: Noise seed, an integer 0-4294967295.
            randomize_seed: If true, a fresh random seed is drawn and returned.
            steps: Denoising steps before strength is applied, within the model's range.
            guidance: Distilled guidance (dev 1-10); schnell ignores it.
            width: Output width, 64-2048 (snapped to 16), or 0 for the image's size.
            height: Output height, 64-2048 (snapped to 16), or 0 for the image's size.

        Returns:
            The PNG, the seed used, and details (including steps_run, the steps actually run).
        """
        request = editing.EditRequest(
            prompt,
            model,
            "img2img",
            [image] if image else [],
            None,
            strength,
            steps,
            guidance,
            seed,
            randomize_seed,
            width,
            height,
        )
        return edited(request, run)

    @endpoint(services, "edit", cost=one_image, outputs=3)
    def inpaint(
        prompt: str,
        image: str,
        mask: str,
        model: str,
        strength: float,
        seed: float,
        randomize_seed: bool,
        steps: float,
        run=gr.Progress(),
    ):
        """Inpainting with FLUX.2 [klein]: repaint the white area of the mask following the prompt.

        Args:
            prompt: What to paint in the masked area; 1-2000 characters.
            image: The image file to repaint (PNG, JPEG or WebP; 64-4096 px a side).
            mask: A mask image of the same size: white repaints, black keeps.
            model: A model key that offers inpainting, e.g. "klein".
            strength: 0.05-1.0; how much the masked area may change.
            seed: Noise seed, an integer 0-4294967295.
            randomize_seed: If true, a fresh random seed is drawn and returned.
            steps: Denoising steps before strength is applied, within the model's range.

        Returns:
            The PNG (at the image's size, scaled to the model's area), the seed used, and details.
        """
        request = editing.EditRequest(
            prompt,
            model,
            "inpaint",
            [image] if image else [],
            mask,
            strength,
            steps,
            None,
            seed,
            randomize_seed,
            0,
            0,
        )
        return edited(request, run)

    return edit, img2img, inpaint
