"""What vida-loader shows a user: progress lines while a command runs (``progress``) and
the summary when it ends (``text``)."""
