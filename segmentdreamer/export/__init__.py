"""Outputs beyond the trainer's ``.ply``: a coloured mesh (``mesh``), the web viewers' ``.splat`` (``splat``)
and GPTEval3D's folder layout of rgb and normal views (``gpteval3d``)."""
