"""dlverify: check a deep-learning GPU server against its spec, and benchmark it."""

__version__ = "0.1.0"
