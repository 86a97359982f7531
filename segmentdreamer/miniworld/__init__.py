"""The miniworld: a procedural 3D world whose captions have known 3D truth (no files, no downloads).

- ``world.py``   the words, the caption grammar (objects of a shape, colour and size, an optional nose that
                 defines the front, two objects in a relation) and the training / held-out caption lists
- ``scenes.py``  a caption's ground-truth Gaussian scene, one draw per (caption, seed)
- ``views.py``   training examples: renders of a draw from the trainer's cameras and backgrounds, with the
                 view-dependent prompt the trainer's conditioning uses

It is the test bed for learned priors: models trained on its renders drive the unchanged pipeline, and every
result can be scored against the scene its caption describes.
"""
