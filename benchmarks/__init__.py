"""Benchmark suites (paper claims, performance), installed as lexmargin.benchmarks."""
