"""The command line, a front end over :class:`enrollment.Service`: ``python -m verify`` or ``verify``."""
