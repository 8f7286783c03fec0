"""The read path: what searches and retrievals need from the index and the blob store."""
