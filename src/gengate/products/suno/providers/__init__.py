"""Suno's upstream adapters."""
