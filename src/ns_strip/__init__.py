"""ns-strip: detect Python namespace packages of every style and convert legacy ones to PEP 420."""

__version__ = "0.1.0"
