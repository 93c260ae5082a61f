"""Naming schemes: how a checkpoint of one of the families names (and lays out) its tensors.

The canonical names are the project's tensor table (harness.core.families: Hugging Face's names and
layouts). A scheme is a map file (TOML, maps/<family>/<scheme>.toml, or a user's file) saying, per
canonical tensor, which stored tensor(s) hold it: renamed, transposed, split or fused along an
axis; which stored names are tied copies of a canonical tensor; which stored names are not weights
of the model (optimizer state, heads) and why. scheme.py reads and checks map files; engine.py turns a
state in any scheme into canonical names and back. Framework-free: numpy only.
"""
