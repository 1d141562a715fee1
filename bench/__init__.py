"""statsaga benchmarks: `statsaga bench` (bench/run.py) and focused micro-benchmarks."""
