"""The audit trail: one record per request that touches patient data (who, from where, what, outcome).

actions.py   the route table: method + route template -> action (store, search, read-frames...)
events.py    AuditEvent, the record, and its JSON form
notes.py     how handlers add the UIDs they learn (stored instances, studies a search returned)
sinks.py     AuditSink and the JSON lines sink (a file or stdout, through a logging queue)
database.py  the index database sink (batched off the request path) and the queries on it
trail.py     AuditTrail: the sinks a running server writes to, opened from plain values
"""
