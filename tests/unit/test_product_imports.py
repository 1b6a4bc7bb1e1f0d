"""The other products do not reach into Midjourney's package: what they share with it (image
decoding and encoding) lives in a neutral place, gengate.imaging. Read from the sources'
import statements."""

from __future__ import annotations

import ast
from pathlib import Path

import gengate.products

PRODUCTS = Path(gengate.products.__file__).parent
MIDJOURNEY = "gengate.products.midjourney"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_no_other_product_imports_midjourneys_modules() -> None:
    packages = sorted(p for p in PRODUCTS.iterdir()
                      if (p / "__init__.py").exists() and p.name != "midjourney")
    assert {"flux", "gpt_image", "openai_images", "gemini_image"} <= {p.name for p in packages}
    reaching = [f"{path.relative_to(PRODUCTS)} imports {name}"
                for package in packages for path in sorted(package.rglob("*.py"))
                for name in sorted(_imports(path))
                if name == MIDJOURNEY or name.startswith(f"{MIDJOURNEY}.")]
    assert reaching == []
