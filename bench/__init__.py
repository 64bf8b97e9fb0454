"""`make bench`: Conveyor measured against Kafka itself and a bare loop, in one run (see run.py)."""
