"""Retrieval planning below the HTTP layer: what a WADO-RS or rendered request gets, as typed results.

`api/` reads the request (scope, accept lists) and shapes the response (validators, URLs, coding);
the modules here look up the index, negotiate, choose the frames and read or make their bytes.
"""
