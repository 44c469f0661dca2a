"""Draw the Edit tab's example reference images (made by this project, no outside assets).

Run `python examples/edit/draw_references.py` to redraw sofa.png, ball.png and stripes.png here.
"""

from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent


def sofa() -> Image.Image:
    """A blue sofa against a beige wall on a wooden floor, 384×288."""
    image = Image.new("RGB", (384, 288), "#e8dcc4")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 210, 384, 288), fill="#a0703c")
    draw.rounded_rectangle((70, 120, 314, 200), radius=18, fill="#2f5fa8")  # back
    draw.rounded_rectangle((50, 160, 334, 225), radius=14, fill="#3a6fc0")  # seat
    draw.rounded_rectangle((40, 140, 90, 225), radius=12, fill="#2a548f")  # arms
    draw.rounded_rectangle((294, 140, 344, 225), radius=12, fill="#2a548f")
    draw.rectangle((60, 225, 72, 240), fill="#3b2a1a")
    draw.rectangle((312, 225, 324, 240), fill="#3b2a1a")
    return image


def ball() -> Image.Image:
    """A red ball with a highlight and a shadow on grey, 256×256."""
    image = Image.new("RGB", (256, 256), "#cfcfcf")
    draw = ImageDraw.Draw(image)
    draw.ellipse((70, 200, 190, 225), fill="#9a9a9a")
    draw.ellipse((68, 68, 188, 188), fill="#d0312d")
    draw.ellipse((100, 92, 130, 118), fill="#f08a84")
    return image


def stripes() -> Image.Image:
    """Bold diagonal stripes in five colours, 256×256: a style reference."""
    image = Image.new("RGB", (256, 256), "#1d1d1d")
    draw = ImageDraw.Draw(image)
    colours = ("#f4b400", "#db4437", "#4285f4", "#0f9d58", "#ab47bc")
    for i in range(-8, 16):
        x = i * 32
        draw.polygon([(x, 0), (x + 16, 0), (x + 16 + 256, 256), (x + 256, 256)], fill=colours[i % 5])
    return image


if __name__ == "__main__":
    for name, draw_image in (("sofa", sofa), ("ball", ball), ("stripes", stripes)):
        draw_image().save(HERE / f"{name}.png", optimize=True)
        print(HERE / f"{name}.png")
