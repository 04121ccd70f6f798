"""Adapting Zhiku's models to one knowledge base, from its own documents and without labels.

Each module tunes one model and decides, on measurements, whether the result is kept:
``llm`` (a LoRA adapter for the local LLM, merged and converted for CTranslate2; its training
data in ``examples``). Tuned models are versioned inside the knowledge base (``models/``).
"""
