"""Benchmarks, run by `make bench` (`python -m bench [name ...]`). Each module measures one
target of PRODUCT.md on a real Postgres and writes its section of docs/benchmarks.md."""
