"""Data access: the only package that knows SQL. Never imports dash.

Modules: config (typed settings), schema (the warehouse contract), engine (the shared engine and read_df),
cache (memoized queries), scope and period (what a request may see, and when), registry (the indicator
registry) with one module per domain (dining, energy, service, maturity, meta), request (parsing request
parameters into scope and period), overview (what the overview page and the API assemble), bulk and demo
(writing warehouses).
"""
