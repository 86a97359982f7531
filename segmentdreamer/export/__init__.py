"""Outputs beyond the trainer's ``.ply``: a coloured mesh (``mesh``), the web viewers' ``.splat`` (``splat``)
and benchmark folder layouts (``benchmarks``)."""
