"""Throughput of peer task queues (huey, RQ, Celery, dramatiq, procrastinate) on this machine.

See README.md beside this file; ``peers.run_all.measure()`` is the entry point for other
benchmark modules (with ``bench/`` on ``sys.path``, as it is for scripts in ``bench/``).
"""
