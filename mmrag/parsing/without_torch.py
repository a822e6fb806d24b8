"""Imported first by the parser fork server only (see `mmrag.parsing.sandbox`): it makes
``import torch`` fail there.

No parser needs PyTorch, but unstructured imports spaCy, whose thinc imports torch when
it can: about 500 MB in the server and in every parser child forked from it, which the
memory limits of `parsing.memory_mb` and of the whole process tree then pay for.
A blocked import is what "torch is not installed" looks like, which thinc handles.
"""

from __future__ import annotations

import sys

sys.modules.setdefault("torch", None)  # type: ignore[arg-type]
