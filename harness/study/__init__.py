"""The growth study (issue 16): does a model grown from a smaller pre-trained one reach a given
validation loss with less compute than the same model trained from scratch?

    python -m harness study --config cases/study.toml [--quick]

config.py reads the profile; flops.py estimates training FLOPs; savings.py computes the steps and
FLOPs each arm needs to reach the tuned scratch run's final validation loss; arms.py says what each
arm starts from; runs.py trains one run (PyTorch or MindSpore, the train kind's loop and optimizer)
with validation; parity.py compares MindSpore's curves with PyTorch's; report.py and plots.py write
reports/study/. The layer sits between harness.commands and harness.kinds (pyproject.toml).
"""
