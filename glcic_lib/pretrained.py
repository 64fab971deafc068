"""Ready-made completion networks: the bundled demo model (and, see below, the authors' model)."""
from __future__ import annotations

from pathlib import Path

from .config import bundled_data_dir

#: File name of the demo checkpoint inside ``data/checkpoints``.
DEMO_CHECKPOINT = "demo_completion.pt"


def demo_checkpoint_path() -> Path:
    return bundled_data_dir() / "checkpoints" / DEMO_CHECKPOINT


def load_pretrained(name: str = "demo"):
    """Load a ready-made completion network (eval mode, CPU).

    ``"demo"``: the small model trained on this project's bundled images (see
    ``data/checkpoints/README.md``): a teaching demo, *not* the paper's Places2 model.
    A path to any checkpoint (or a Torch7 ``.t7`` file of the authors) also works.
    """
    from .checkpoint import CheckpointError, load_completion

    if name == "demo":
        path = demo_checkpoint_path()
        if not path.exists():
            raise CheckpointError(f"the bundled demo model is missing ({path}); re-clone the repository "
                                  f"or train one with `python -m glcic_lib train --preset cpu`")
        return load_completion(path)
    path = Path(name)
    if path.suffix == ".t7":
        return load_torch7(path).model  # noqa: F821  (defined by the Torch7 importer below)
    return load_completion(path)
