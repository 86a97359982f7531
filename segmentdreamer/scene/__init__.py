"""The 3D scene: Gaussians and their .ply files, the rasterizer, cameras, densification, BEG, turntables.

- ``gaussians.py``  parameters, activations, initialisation from points, .ply I/O
- ``render.py``     render(means, quats, scales, opacities, colors, viewmats, Ks, ...) -> rgb, alpha, disparity
- ``cameras.py``    the training camera sampler and the evaluation ring
- ``densify.py``    clone / split / prune / opacity reset with Adam-state surgery
- ``beg.py``        brightness-equalized generation (Connect3D)
- ``turntable.py``  the 120-view evaluation ring as PNGs and a video
- ``render_folder.py``  a finished render folder: its views and the completion marker scorers require
- ``compare.py``    a scene against a reference over the ring: PSNR, SSIM, silhouette IoU (known-answer scores)
- ``known_scenes.py``  ground-truth scenes built in code (the known-answer prior's)
"""
