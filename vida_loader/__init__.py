"""vida-loader: parallel, resumable, verified copy of huge MongoDB-API collections."""

__version__ = "0.1.0"
