"""shiftd: fills open home-health shifts."""

__version__ = "0.1.0"
