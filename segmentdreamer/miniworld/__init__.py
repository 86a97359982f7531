"""The miniworld: a procedural 3D world whose captions have known 3D truth (no files, no downloads), and the learned
models trained on its renders (docs/miniworld.md).

- ``world.py``          the words, the caption grammar (objects of a shape, colour and size, an optional nose that
                        defines the front, two objects in a relation) and the training / held-out caption lists
- ``scenes.py``         a caption's ground-truth Gaussian scene, one draw per (caption, seed)
- ``views.py``          training examples: renders of a draw from the trainer's cameras and backgrounds, with the
                        view-dependent prompt the trainer's conditioning uses
- ``dataset.py``        the rendered training set (and its degradations), stored as npz
- ``settings.py``       every setting of the models, their training and the gates (typed)
- ``loop.py``           the one resumable optimisation loop; ``train_clip.py``, ``train_vae.py``, ``train_unet.py``,
                        ``train_pointe.py`` the trainers on it
- ``formats.py``        the models written in the on-disk layouts the pipeline loads (diffusers, transformers, Point-E)
- ``gates.py``, ``report.py``, ``build.py``   the quality gates, the build's report and manifest, its stages
- ``truth_metrics.py``  a learned scene against its caption's truth (the ``truth_psnr`` metric's columns)

It is the test bed for learned priors: models trained on its renders drive the unchanged pipeline, and every
result can be scored against the scene its caption describes.
"""
