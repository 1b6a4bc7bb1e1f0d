"""Image parts every product may use: decoding and encoding (:mod:`.codec`), and the
drawing primitives of the local renderers: palettes derived from a prompt, painted scenes,
composites and simple image analysis."""
