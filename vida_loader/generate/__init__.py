"""``vida-loader generate``: realistic documents at full speed, to a server or a file."""
