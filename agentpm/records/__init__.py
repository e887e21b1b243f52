"""Records, the bottom layer: the incident schema, parsing of the four formats, corpus loading,
the parse cache and byte-preserving writes. Imports nothing above it.
"""
