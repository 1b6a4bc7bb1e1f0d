"""Midjourney's upstream adapters: midjourney-proxy and a TTAPI-compatible upstream."""
