"""grokbook: the package behind the book *Grokking, reproduced*.

Modules, one idea each:

The flow is settings -> experiment -> History -> measure -> figure / claim:

- ``config``: typed, validated settings (data, model, optimizer, budget, gradient transform, run);
- ``profiles``: every chapter's ci / book / paper settings, one module per chapter;
- ``experiments``: the recipes the chapters share (a run, a stack, a grid, GrokTransfer, a race),
  every run through ``cache`` (load or train, keyed by settings, seed and code version);
- ``tasks``: data sets (modular arithmetic, sparse parity, XOR clusters);
- ``embeddings``: fixed input tables (one-hot, binary, Fourier, text);
- ``models``: the bias-free FNNs, the Nanda-style Transformer, the XOR theory's networks;
- ``train``: the one training loop; ``ensemble``: a stack of models trained as one;
- ``accelerators``: gradient transforms (GrokFast); ``transfer``: GrokTransfer's ``A @ B``;
- ``neuralgrok``: NeuralGrok's learned gradient transform (amplifier, meta step, outer split);
- ``history``: a run's measurements, saved as strict versioned JSON; ``files``: atomic writes;
- ``measures``: time gap, spectra, NTK change, r_W; ``stats``: statistics over seeds with runs
  that never got there censored at their budget; ``claims``: the checks that end a chapter;
- ``plots``, ``tables``, ``widgets``: one figure style, result tables (pandas), one explorer base;
- ``chapters``, ``bench``, ``cli``: execute the book, measure speed, the ``grokbook`` command.
"""

from grokbook.history import History
from grokbook.measures import epochs_to, summary, time_gap, weight_norm
from grokbook.models import FNN, Transformer, make_model
from grokbook.tasks import OPERATIONS, modular_arithmetic
from grokbook.train import train

__version__ = "0.1.0"
__all__ = ["FNN", "History", "OPERATIONS", "Transformer", "epochs_to", "make_model",
           "modular_arithmetic", "summary", "time_gap", "train", "weight_norm"]
