"""The pure core of statsaga: standard library only, no I/O, no Ray, no web framework."""
