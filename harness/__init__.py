"""Framework-neutral core of bert2bert-parity: presets, growth plan, metrics, reports, CLI.

Nothing here imports torch or mindspore at import time; framework work lives in
models_pt / models_ms and is imported lazily where needed.
"""
