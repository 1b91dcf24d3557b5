"""grokbook: the package behind the book *Grokking, reproduced*.

Modules, one idea each:

- ``tasks``: data sets (modular arithmetic tables, sparse parity);
- ``models``: the bias-free FNNs (token and vector inputs) and the Nanda-style Transformer;
- ``embeddings``: fixed input embeddings (one-hot, binary, Fourier, a stored table);
- ``train``: the one training loop and its ``History``;
- ``ensemble``: many models of one architecture trained as one vectorized run;
- ``accelerators``: gradient transforms (GrokFast's EMA and MA filters);
- ``transfer``: GrokTransfer, a weak model's embedding ``A`` in a target as ``A @ B``;
- ``xor``: the XOR cluster problem of the theory chapter, its networks and measures;
- ``measures``: time gap, epochs to an accuracy, weight norm, NTK change;
- ``claims``: the checks that end every chapter;
- ``profiles``: the ci / book / paper sizes of each chapter;
- ``plots``, ``widgets``: one figure style, live controls;
- ``chapters``, ``bench``, ``cli``: execute the book, measure speed, the ``grokbook`` command.
"""

from grokbook.measures import epochs_to, summary, time_gap, weight_norm
from grokbook.models import FNN, Transformer, make_model
from grokbook.tasks import OPERATIONS, modular_arithmetic
from grokbook.train import History, train

__version__ = "0.1.0"
__all__ = ["FNN", "History", "OPERATIONS", "Transformer", "epochs_to", "make_model",
           "modular_arithmetic", "summary", "time_gap", "train", "weight_norm"]
