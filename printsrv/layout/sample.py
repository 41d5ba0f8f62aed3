"""Built-in sample data (``templates/<name>/sample.json``) and synthetic portraits/signatures.

The synthetic images are drawn, not photographs of anyone: they serve the ``--sample`` preview,
the golden tests and the benchmark.
"""

from __future__ import annotations

import io
import json
import math
import random
from datetime import date

from PIL import Image, ImageDraw

from printsrv.cardinput import CardInput
from printsrv.layout.errors import TemplateError
from printsrv.layout.template import TEMPLATES_DIR

BACKGROUNDS = {"RED": (200, 30, 40), "BLUE": (30, 90, 200), "ORANGE": (240, 130, 20)}


def synthetic_photo(
    seed: int, background: str = "RED", size: tuple[int, int] = (300, 400)
) -> bytes:
    """A JPEG head-and-shoulders drawing on a plain ``background`` (3:4 by default)."""
    rng = random.Random(seed)
    w, h = size
    image = Image.new("RGB", size, BACKGROUNDS[background])
    draw = ImageDraw.Draw(image)
    skin = (rng.randint(150, 230), rng.randint(110, 180), rng.randint(80, 140))
    shirt = (rng.randint(0, 90), rng.randint(0, 90), rng.randint(0, 120))
    draw.ellipse((w * 0.08, h * 0.68, w * 0.92, h * 1.3), fill=shirt)
    draw.rectangle((w * 0.42, h * 0.55, w * 0.58, h * 0.75), fill=skin)
    head = (w * 0.28, h * 0.18, w * 0.72, h * 0.66)
    draw.ellipse(head, fill=skin)
    hair = (rng.randint(10, 50),) * 3
    draw.chord((head[0] - 4, head[1] - 8, head[2] + 4, head[3] - h * 0.12), 180, 360, fill=hair)
    for ex in (0.41, 0.59):
        draw.ellipse((w * ex - 7, h * 0.40 - 4, w * ex + 7, h * 0.40 + 4), fill=(40, 30, 30))
    draw.arc((w * 0.43, h * 0.50, w * 0.57, h * 0.58), 20, 160, fill=(120, 40, 40), width=3)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


def synthetic_signature(
    seed: int, transparent: bool = True, size: tuple[int, int] = (600, 240)
) -> bytes:
    """A PNG pen scribble: dark on transparent (or on white)."""
    rng = random.Random(seed)
    w, h = size
    image = Image.new(
        "RGBA" if transparent else "RGB", size, (255, 255, 255, 0) if transparent else "white"
    )
    draw = ImageDraw.Draw(image)
    points = []
    for i in range(60):
        t = i / 59
        x = w * (0.05 + 0.9 * t)
        y = h * (0.5 + 0.3 * math.sin(t * rng.uniform(8, 16) + rng.uniform(0, 3)) * (1 - t * 0.5))
        points.append((x, y))
    draw.line(
        points, fill=(20, 20, 60, 255) if transparent else (20, 20, 60), width=7, joint="curve"
    )
    draw.line(
        (w * 0.1, h * 0.8, w * 0.85, h * 0.72),
        fill=(20, 20, 60, 255) if transparent else (20, 20, 60),
        width=5,
    )
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def sample_card(name: str, issue_date: date | None = None) -> CardInput:
    """The sample record of template ``name`` with its photo and signature files."""
    folder = TEMPLATES_DIR / name
    path = folder / "sample.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise TemplateError(path, None, "(sample)", f"cannot read sample data: {exc}") from exc
    photo = (folder / data["photo"]).read_bytes() if data.get("photo") else b""
    signature = (folder / data["signature"]).read_bytes() if data.get("signature") else b""
    return CardInput(
        request_id=f"SAMPLE-{name}",
        fields=data["fields"],
        photo_jpeg=photo,
        signature_png=signature,
        issue_date=issue_date or date.fromisoformat(data["issue_date"]),
    )
