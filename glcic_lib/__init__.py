"""glcic_lib: Globally and Locally Consistent Image Completion (Iizuka et al., 2017) in PyTorch.

The package behind the course's notebooks: the paper's networks built from one description
of their layers (:mod:`glcic_lib.tables`), receptive fields, completion at any size,
post-processing, training, evaluation and interactive widgets.
"""
from .inpaint import complete
from .models import CompletionNetwork, ContextDiscriminator, GlobalDiscriminator, LocalDiscriminator, paste
from .pretrained import load_pretrained

__version__ = "0.1.0"

__all__ = ["CompletionNetwork", "ContextDiscriminator", "GlobalDiscriminator", "LocalDiscriminator",
           "complete", "paste", "load_pretrained", "__version__"]


def __getattr__(name):
    # ``glcic_lib.evaluate`` is imported on first use: it pulls in OpenCV and scikit-image,
    # which ``import glcic_lib`` alone should not pay for
    if name == "evaluate":
        from .evaluation import evaluate

        return evaluate
    raise AttributeError(f"module 'glcic_lib' has no attribute {name!r}")
