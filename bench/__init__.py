"""Benchmarks that print a comparison table: ``python -m bench [--size small|full] [--only NAME]``.

Everything runs offline against the fakes in ``tests/fakes`` (a TLS Instagram behind a
CONNECT proxy with injected latency and a per-connection bandwidth cap, and a strict
fake Telegram). Figures are measured side by side in the same run, so the table
reports ratios, not absolute targets. See bench/README.md.
"""
