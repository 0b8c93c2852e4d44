"""The data layer: image readers, the ``ImageDataset`` over a :class:`~hashkit.interfaces.Split`, transforms
from the recipe, epoch samplers and versioned split manifests. Concrete datasets are plugins
(``plugins/datasets/``); this package holds what is not specific to one dataset."""
