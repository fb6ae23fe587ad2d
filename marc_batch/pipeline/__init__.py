"""End-to-end jobs composed from the library's parts; the Prefect flows call these."""
