"""Model architectures, bundles (weights + JSON card + sha256) and the registry.

Importing this package loads no TensorFlow/Keras; only building or running a
Keras model does.
"""

from genretag.models.bundle import Bundle, ModelCard, read_bundle
from genretag.models.registry import list_bundled, resolve_model

__all__ = ["Bundle", "ModelCard", "list_bundled", "read_bundle", "resolve_model"]
