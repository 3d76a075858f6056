"""``make bench``: vodfc against Alibaba's official Python SDKs, measured in the same run.

Cold start, package size, warm overhead, callback throughput and cleanup at scale; see
``bench/README.md``. Run with ``python -m bench`` (``--quick`` for a short development run).
"""
