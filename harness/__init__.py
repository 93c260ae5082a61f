"""bert2bert-parity: grow BERT / GPT-2 in MindSpore and PyTorch, and prove the two agree.

Layers, arrows pointing down only (`lint-imports`, contracts in pyproject.toml):
    harness.cli               the command line (python -m harness, bert2bert)
    harness.kinds.<kind>      one folder per kind of case (growth, distill, inference) + registry
    harness.suite             generic machinery: rows, tolerances, reports, inputs, framework access
    models_pt | models_ms     the mirrored model trees (imported lazily by the suite)
    harness.core              numpy only: configs, families, plan, recipes, execution forms, formats
"""
