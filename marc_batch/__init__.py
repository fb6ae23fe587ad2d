"""marc-batch: an offline embedding batch service for MARC-compressed LLM embeddings."""

__version__ = "0.1.0"
