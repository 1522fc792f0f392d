"""batchctl: a command-line tool for OpenAI-compatible Batch APIs."""

__version__ = "0.1.0"
