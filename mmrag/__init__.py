"""mmrag: self-hosted multimodal retrieval-augmented generation.

The library is importable without the HTTP service or the CLI; heavy model
libraries are imported only when a model is built.
"""

from mmrag.errors import MmragError
from mmrag.settings import Settings, load_settings

__all__ = ["MmragError", "Settings", "load_settings", "__version__"]
__version__ = "0.1.0"
