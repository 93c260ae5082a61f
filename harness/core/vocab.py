"""The project's vocabulary, each word defined once: growth methods and samplings, frameworks (in
the order a case runs them) and their titles, dtypes, and where a case's source weights come from."""

LOSSLESS = "lossless"  # the function-preserving method for any width (docs/lossless.md)
METHODS = ("fpi", "aki", LOSSLESS)
SAMPLINGS = ("paper", "balanced")
FRAMEWORKS = ("pt", "ms")    # PyTorch first: its weights file is the reference the MindSpore state meets
TITLES = {"pt": "PyTorch", "ms": "MindSpore", "ort": "ONNX Runtime"}   # frameworks, and the third backend
DTYPES = {"fp32": "float32", "fp16": "float16"}   # as rows, cases and tolerances say it -> numpy's name
# what a model's parameters may be loaded as: the case dtypes, and float64 for the judges (lossless
# preservation evaluated without float32 noise; the training drift judge)
PARAM_DTYPES = (*DTYPES.values(), "float64")
# where a case's source weights come from: drawn from the seed (as `init`), or real MiniLM's
WEIGHTS = ("seed", "minilm")

MS_MODES = ("jit", "pynative")   # MindSpore's training step: compiled by ms.jit, or eager (PyNative)
