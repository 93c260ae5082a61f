"""GPT-2 inference parity: PyTorch, MindSpore and ONNX Runtime, one test per quantity per case
of cases/inference.toml (`infer_case` is parametrised by the root conftest.py).

    pytest -k onnx               every inference case (tiny ones in make test)
    pytest -k perplexity         the perplexity check of every inference case
    pytest -k "tiny_text_onnx and greedy"
"""


def test_logits(infer_case, parity):
    parity.check(infer_case, "logits")


def test_greedy(infer_case, parity):
    parity.check(infer_case, "greedy")


def test_perplexity(infer_case, parity):
    parity.check(infer_case, "perplexity")
