"""Imported by the parser workers' fork server (``ingest.workers``): partitioners, the spaCy model and
the OCR engine's modules are loaded once there, so every worker forks warm
(``ingest.parse.warm_partitioners``). The OCR model itself is loaded by each worker (its onnxruntime
threads would not survive the fork)."""
from ingest.parse import warm_partitioners

warm_partitioners()
