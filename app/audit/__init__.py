"""The audit trail: one record per request that touches patient data (who, from where, what, outcome).

    actions.py   the route table: method + route template -> action (store, search, read-frames...)
    events.py    AuditEvent, the record, and its JSON form
    notes.py     how handlers add the UIDs they learn (stored instances, studies a search returned)
    batching.py  BatchingSink: a sink's queue and writer thread, batches, retries, flush and close
    sinks.py     AuditSink and the JSON lines sink (a file or stdout)
    database.py  the index database sink
    queries.py   reading the trail back from the index (`fovea audit`, GET /admin/audit)
    table.py     events as a text table for people
    atna.py      events as DICOM audit messages (PS3.15 A.5, IHE ATNA)
    syslog.py    the syslog sink sending those messages (RFC 5424 over UDP or TCP)
    trail.py     AuditTrail: the sinks a running server writes to, opened from plain values
"""
