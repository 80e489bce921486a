"""UniMoE-Audio: dynamic-capacity MoE (top-p routing, shared and null experts) for unified speech and music generation. (work in progress)."""
