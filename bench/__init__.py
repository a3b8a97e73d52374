"""Benchmarks: each starts the servers it needs, measures one workload and prints JSON."""
