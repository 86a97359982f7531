"""A metric from outside the package, as docs/architecture.md "Adding a metric" shows: the mean brightness of a run's
views (0 black, 1 white), a Table 1 column once this file is named under ``plugins:``.

The whole extension: a scorer factory and one line to register.
"""

import imageio.v3 as iio
import numpy as np

from segmentdreamer.evaluate.metric import Metric, register_metric
from segmentdreamer.scene.render_folder import view_paths


def brightness_scorer(models, device):
    """Needs no model: each view's mean RGB value in [0, 1], and their mean."""

    def score(run):
        values = [float(iio.imread(path)[..., :3].mean()) / 255.0 for path in view_paths(run.views)]
        return {"scores": values, "mean": float(np.mean(values))}

    return score


register_metric(Metric("brightness", "Brightness", higher_is_better=True, digits=3, scorer=brightness_scorer))
