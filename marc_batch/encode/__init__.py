"""The batch encoder runtime: texts in, k-dim embeddings out, the model kept busy."""
