"""One module per family; each exposes ``SUITES``, a list of :class:`Suite`."""
