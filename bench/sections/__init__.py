"""One module per section of `make bench`; each takes the shared `bench.harness.Bench`."""
