"""Infrastructure under the index and the blob store: database engine, blob stores, spool, outages,
throttles."""
