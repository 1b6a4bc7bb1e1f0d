"""Drawing primitives shared by the products' local renderers: palettes derived from a
prompt, painted scenes, composites and simple image analysis."""
