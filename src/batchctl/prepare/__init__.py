"""From a table of rows and a prompt to Batch requests, and from results back to the rows.

`rows` reads CSV/TSV, JSONL and Parquet one row at a time; `template` fills `{column}` placeholders;
`requests` turns one row into one request line; `join` writes the rows again with their answers.
The use cases are `batchctl.preparing` (`prepare`, `submit DATA --template`) and `batchctl.joining`
(`download --join`).
"""

from batchctl.prepare.requests import ENDPOINTS, PrepareSpec, row_id
from batchctl.prepare.rows import RowSource, open_rows
from batchctl.prepare.template import Template

__all__ = ["ENDPOINTS", "PrepareSpec", "RowSource", "Template", "open_rows", "row_id"]
