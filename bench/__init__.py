"""shiftd's benchmarks: `python -m bench` (or `make bench`) measures and prints the figures
reported in the README's "Performance" section, each next to a ceiling measured in the same
run on the same machine. See `bench/__main__.py` for the options."""
