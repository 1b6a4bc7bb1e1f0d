"""Sora's upstream adapters: TTAPI's channel and OpenAI's video API."""
