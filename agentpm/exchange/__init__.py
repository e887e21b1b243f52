"""Exchange: incident files in and out of agentpm.

- :mod:`agentpm.exchange.redact` takes secrets and personal data out of incident files;
- :mod:`agentpm.exchange.importing` (with :mod:`agentpm.exchange.sources`) writes incident files
  from other places (genai-incidents, the AI Incident Database, CSV/JSON exports, plain Markdown);
- :mod:`agentpm.exchange.export` flattens a corpus into a table (CSV, JSON lines, Parquet).

Rules for the whole wing: it works on records only (never the classifier or analysis; stored
predictions are read from the records), writes only through :mod:`agentpm.records.writing`
(new files never replace anything; in-place edits are atomic), and imports pandas and pyarrow
only inside the function that writes Parquet.
"""
