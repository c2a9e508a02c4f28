"""Benchmarks run by ``excentra bench ...``; results are recorded in ``bench/RESULTS.md``."""
