"""grokbook: the package behind the book *Grokking, reproduced*.

Modules, one idea each: ``tasks`` (data sets), ``models`` (FNN, Transformer), ``train`` (the one
training loop and its ``History``), ``ensemble`` (many models trained as one), ``measures``
(time gap, steps to accuracy, norms), ``claims`` (the chapters' checks), ``profiles`` (the ci /
book / paper sizes), ``plots`` (the figure style), ``widgets`` (live controls), ``chapters``
(execute the book), ``bench`` (speed figures), ``cli`` (the ``grokbook`` command).
"""

from grokbook.measures import epochs_to, summary, time_gap, weight_norm
from grokbook.models import FNN, Transformer, make_model
from grokbook.tasks import OPERATIONS, modular_arithmetic
from grokbook.train import History, train

__version__ = "0.1.0"
__all__ = ["FNN", "History", "OPERATIONS", "Transformer", "epochs_to", "make_model",
           "modular_arithmetic", "summary", "time_gap", "train", "weight_norm"]
