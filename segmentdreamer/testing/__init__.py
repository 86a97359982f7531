"""Offline stand-ins: tiny random-weight models in the real on-disk formats (plumbing, never quality)."""
