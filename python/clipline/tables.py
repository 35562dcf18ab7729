"""Manifest tables as pyarrow Tables, committed rows only."""
from . import _native


def read_table(uri, name, storage_options=None):
    """Table ``name`` (``videos``, ``shots``, ``clips``, ``captions``, ``samples``, ``shards``,
    ``runs``) of the output at ``uri`` as a pyarrow Table.

    Only the Parquet parts that commit markers name are read, as ``clipline sql`` does, so a
    killed run's leftovers never appear. Parts written by older clipline versions, with fewer
    columns, are unified (missing columns are null). An output with no committed rows gives an
    empty table with no columns.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    parts = _native.committed_table_parts(str(uri), name, storage_options)
    tables = [pq.read_table(pa.BufferReader(data)) for _, data in parts]
    if not tables:
        return pa.table({})
    return pa.concat_tables(tables, promote_options="default")
