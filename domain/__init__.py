"""The restoration domain: aggregates, their events, rules and value types.

Pure: nothing here performs I/O or knows about HTTP, GraphQL or SQL.
"""
