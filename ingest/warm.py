"""Imported by the parser workers' fork server (``ingest.workers``): partitioners and the spaCy
model are loaded once there, so every worker forks warm (``ingest.parse.warm_partitioners``)."""
from ingest.parse import warm_partitioners

warm_partitioners()
