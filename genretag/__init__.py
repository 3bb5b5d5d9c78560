"""genretag: listen to a music library and tag every track with its genre.

Importing this package is cheap: nothing here loads TensorFlow, Keras or librosa.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
