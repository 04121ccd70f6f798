"""Adapting Zhiku to one knowledge base, from its own documents and without labels (``zhiku tune``).

Each module tunes one thing and decides, on measurements, whether the result is kept: ``fusion``
(the hybrid weights, chosen on generated questions and written to the knowledge base's
zhiku.toml) and ``llm`` (a LoRA adapter for the local LLM, merged and converted for CTranslate2;
its training data in ``examples``). Tuned models are versioned inside the knowledge base (``models/``).
"""
