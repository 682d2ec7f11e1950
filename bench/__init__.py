"""paywire's benchmarks: `python -m bench` (or `nox -s bench`) runs them side by side in one run."""
