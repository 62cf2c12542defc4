"""The cockpit's benchmarks: ``python -m bench`` (the whole run, see bench/run.py), ``bench.energy_panel`` (one
page's callbacks as functions) and ``bench/bench_load.py`` (the loader's throughput)."""
