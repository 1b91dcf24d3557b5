"""Live controls for the chapters: one explorer base, one small subclass per chapter.

An explorer turns its controls into typed settings, runs the chapter's experiment through the
experiments layer (so the run cache answers at once for a setting already seen) and draws the
result, redrawing about ``REDRAWS`` times while it trains. Subclasses say only what differs:
their controls (:meth:`Explorer.make_controls`), how values become a result
(:meth:`Explorer.run`), how a result is drawn (:meth:`Explorer.plot`) and described.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import matplotlib.pyplot as plt

from grokbook import experiments, measures
from grokbook.config import GrokFastCfg, ModularCfg, replace
from grokbook.embeddings import make_table
from grokbook.history import History
from grokbook.plots import PALETTE, method_colour, plot_curves, plot_embedding, training_figure
from grokbook.tasks import is_prime

PRIMES = tuple(n for n in range(17, 114) if is_prime(n))
REDRAWS = 15  # redraw the figure about this many times per run
# Labels as wide as their text (a fixed width cut "GrokTransfer lr" off), controls 440 px wide.
STYLE = {"description_width": "initial"}
LAYOUT = {"width": "440px"}


def _slider(kind, description: str, **options):
    """An ipywidgets control of class ``kind`` in the explorers' style and width."""
    import ipywidgets as w

    return kind(description=description, style=STYLE, layout=w.Layout(**LAYOUT), **options)


def _nearest(options, value):
    """The option closest to ``value`` (a slider's start when ``value`` is not an option)."""
    return min(options, key=lambda option: abs(option - value))


def training_sliders(frac: float, lr: float, weight_decay: float, init_scale: float,
                     epochs: int, max_epochs: int = 20000) -> dict:
    """The sliders most explorers share: train fraction, lr, weight decay, init, epochs."""
    import ipywidgets as w

    return {
        "frac": _slider(w.FloatSlider, "train fraction", value=frac, min=0.1, max=0.9,
                        step=0.05),
        "lr": _slider(w.FloatLogSlider, "learning rate", value=lr, base=10, min=-4, max=-0.5,
                      step=0.25),
        "wd": _slider(w.FloatSlider, "weight decay", value=weight_decay, min=0.0, max=5.0,
                      step=0.1),
        "init": _slider(w.FloatLogSlider, "init scale", value=init_scale, base=2, min=-3,
                        max=3, step=0.25),
        "epochs": _slider(w.IntSlider, "epochs", value=epochs, min=200, max=max_epochs,
                          step=200),
    }


class Explorer:
    """Controls -> settings -> cached experiment -> figure (see the module doc).

    ``profile`` is the chapter's profile (start values and model sizes); ``initial`` a result
    to show before the first click, so that a static page shows a figure.
    """

    figsize = (7.5, 3.4)

    def __init__(self, profile: Any, initial: Any = None):
        import ipywidgets as w

        self.profile = profile
        self.controls = self.make_controls()
        self.status = w.HTML()
        self.figure = w.Output()
        # The default style: ipywidgets' "primary" blue fails the contrast check (3.1:1), and
        # an icon loads a font the rendered book cannot serve.
        self.button = w.Button(description="Train", tooltip="train with these settings")
        self.button.on_click(self.click)
        if initial is not None:
            self.show(initial)
            self.status.value = self.describe(initial)

    # -- what a subclass says ----------------------------------------------------------------
    def make_controls(self) -> dict:
        raise NotImplementedError

    def run(self, values: dict[str, Any]) -> Any:
        """Train (or load) what ``values`` ask for; call :meth:`live` to redraw as it goes."""
        raise NotImplementedError

    def plot(self, result: Any) -> plt.Figure:
        raise NotImplementedError

    def describe(self, result: Any) -> str:
        return measures.describe(result) if isinstance(result, History) else ""

    # -- shared machinery --------------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        return {name: control.value for name, control in self.controls.items()}

    def alt_text(self, fig: plt.Figure, result: Any) -> str:
        """Words for readers who cannot see the figure: its panels' titles and axes, and the
        result's summary."""
        panels = [f"{ax.get_title() or 'a panel'}: {ax.get_ylabel() or 'value'} against "
                  f"{ax.get_xlabel() or 'x'}" for ax in fig.axes if ax.get_visible()
                  and (ax.get_xlabel() or ax.get_ylabel())]
        text = "; ".join(panels) or "the explorer's figure"
        summary = self.describe(result)
        return text + (f". {summary}" if summary else "")

    def show(self, result: Any) -> None:
        """Draw ``result`` into the figure area, as an image with alt text (the rendered book
        shows it from the saved widget state)."""
        import base64
        import html
        import io

        from IPython.display import HTML, clear_output, display

        fig = self.plot(result)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        alt = html.escape(self.alt_text(fig, result), quote=True)
        plt.close(fig)
        data = base64.b64encode(buffer.getvalue()).decode()
        with self.figure:
            clear_output(wait=True)
            display(HTML(f'<img src="data:image/png;base64,{data}" alt="{alt}" '
                         f'width="{round(fig.get_figwidth() * 100)}" style="max-width: 100%">'))

    def live(self, epochs: int, eval_every: int,
             draw: Callable[[History], Any] | None = None) -> Callable[[History], None]:
        """A training callback that redraws (``draw(history)``, default :meth:`show`) about
        ``REDRAWS`` times over a run of ``epochs`` epochs."""
        every = max(1, epochs // eval_every // REDRAWS)
        draw = draw or self.show

        def redraw(history: History) -> None:
            if len(history) % every == 0:
                draw(history)
                self.status.value = f"epoch {history.epoch[-1]} / {epochs}"
        return redraw

    def each(self, methods: dict[str, Callable[[Callable], History]], epochs: int,
             eval_every: int) -> dict[str, History]:
        """Run ``methods`` (``name -> fn(callback) -> History``) in turn, redrawing every run
        so far, the current one included."""
        runs: dict[str, History] = {}
        for name, method in methods.items():
            def draw(history: History, name: str = name) -> None:
                self.show({**runs, name: history})
            runs[name] = method(self.live(epochs, eval_every, draw))
        return runs

    def click(self, _=None) -> None:
        """The Train button: run with the controls' values; bad settings are reported in the
        status line, not as a traceback."""
        self.button.disabled = True
        try:
            result = self.run(self.values())
            self.show(result)
            self.status.value = self.describe(result)
        except ValueError as error:
            self.status.value = f"<b>error:</b> {error}"
        finally:
            self.button.disabled = False

    def widget(self):
        import ipywidgets as w

        return w.VBox([w.VBox([*self.controls.values(), self.button]), self.status,
                       self.figure])


def _eval_every(epochs: int) -> int:
    return max(1, epochs // 200)


# ---- chapter 1 ------------------------------------------------------------------------------

class GrokkingExplorer(Explorer):
    """Model, p, train fraction, lr, weight decay, init scale and epochs: train a model on
    a+b mod p live and redraw accuracy, loss and weight norm as it goes."""

    def make_controls(self):
        import ipywidgets as w

        run = self.profile.fnn
        return {"model": w.ToggleButtons(options=["fnn", "transformer"], value="fnn",
                                         description="model", style=STYLE),
                "p": _slider(w.SelectionSlider, "p (prime)", options=PRIMES,
                             value=_nearest(PRIMES, run.data.p)),
                **training_sliders(run.data.frac, run.optim.lr, run.optim.weight_decay,
                                   run.model.init_scale, run.budget.epochs)}

    def run(self, v):
        base = self.profile.fnn if v["model"] == "fnn" else self.profile.transformer
        epochs = v["epochs"]
        cfg = replace(base, data=ModularCfg("add", v["p"], v["frac"]), optim__lr=v["lr"],
                      optim__weight_decay=v["wd"], model__init_scale=v["init"],
                      budget__epochs=epochs, budget__eval_every=_eval_every(epochs),
                      budget__stop_acc=None)
        return experiments.train_run(cfg, 0, progress=False,
                                     callback=self.live(epochs, _eval_every(epochs))).history

    def plot(self, history):
        cfg = history.config
        return training_figure(history, title=f"{cfg.get('model', '')}, lr {cfg.get('lr')}, "
                               f"wd {cfg.get('weight_decay')}")


def grokking_explorer(profile, initial: History | None = None):
    """Chapter 1's explorer (see :class:`GrokkingExplorer`)."""
    return GrokkingExplorer(profile, initial).widget()


# ---- chapter 2 ------------------------------------------------------------------------------

class EmbeddingExplorer(Explorer):
    """Pick a fixed input embedding, set the hyperparameters, and train chapter 2's FNN live:
    accuracy curves on the left, the embedding's PCA picture on the right."""

    figsize = (10, 3.4)

    def make_controls(self):
        import ipywidgets as w

        names = list(self.profile.runs)
        first = self.profile.runs[names[0]]
        controls = {"embedding": w.ToggleButtons(options=names, value=names[0],
                                                 description="embedding", style=STYLE),
                    **training_sliders(first.data.frac, first.optim.lr,
                                       first.optim.weight_decay, first.model.init_scale,
                                       first.budget.epochs)}
        controls["embedding"].observe(self.choose, names="value")
        return controls

    def choose(self, change) -> None:
        """Selecting an embedding sets the sliders to its settings in the chapter."""
        run = self.profile.runs[change["new"]]
        for name, value in (("lr", run.optim.lr), ("wd", run.optim.weight_decay),
                            ("init", run.model.init_scale), ("epochs", run.budget.epochs)):
            self.controls[name].value = value

    def run(self, v):
        epochs = v["epochs"]
        cfg = replace(self.profile.runs[v["embedding"]], data__frac=v["frac"],
                      optim__lr=v["lr"], optim__weight_decay=v["wd"],
                      model__init_scale=v["init"], budget__epochs=epochs,
                      budget__eval_every=_eval_every(epochs), ntk_probe=0)
        return experiments.train_run(cfg, 0, progress=False,
                                     callback=self.live(epochs, _eval_every(epochs))).history

    def plot(self, result):
        runs = result if isinstance(result, dict) else {self.controls["embedding"].value: result}
        name = self.controls["embedding"].value
        fig, (curves, pca) = plt.subplots(1, 2, figsize=self.figsize)
        if name in runs:
            plot_curves(runs[name], "acc", ax=curves)
        curves.set_title(f"{name} embedding, a+b mod {self.profile.p}")
        plot_embedding(pca, make_table(name, self.profile.p),
                       title=f"the {name} table, first two PCs")
        return fig

    def describe(self, result):
        if isinstance(result, dict):
            run = result.get(self.controls["embedding"].value)
            return measures.describe(run) if run is not None else "press Train"
        return super().describe(result)


def embedding_explorer(profile, initial: dict[str, History] | None = None):
    """Chapter 2's explorer (see :class:`EmbeddingExplorer`)."""
    return EmbeddingExplorer(profile, initial).widget()


# ---- chapter 3 ------------------------------------------------------------------------------

class XorExplorer(Explorer):
    """The XOR cluster problem (eps, n, p, width, epochs): train the wide network normally,
    live, then a 3-neuron weak model and the transferred target's single step, and draw both on
    one plot: the delay appears and vanishes."""

    def make_controls(self):
        import ipywidgets as w

        P = self.profile
        dimensions = (100, 300, 1000, 3000, 10000)
        return {
            "eps": _slider(w.FloatSlider, "noise eps", value=P.eps, min=0.0, max=0.5, step=0.01),
            "n": _slider(w.IntSlider, "train size n", value=P.n, min=50, max=2000, step=50),
            "p": _slider(w.SelectionSlider, "dimension p", options=dimensions,
                         value=_nearest(dimensions, P.p)),
            "width": _slider(w.IntSlider, "width", value=P.wide["width"], min=8, max=512,
                             step=8),
            "epochs": _slider(w.IntSlider, "epochs", value=P.wide_epochs, min=50, max=2000,
                              step=50),
        }

    def run(self, v):
        from grokbook.tasks import xor_cluster

        P = replace(self.profile, eps=v["eps"], n=v["n"], p=v["p"],
                    wide={**self.profile.wide, "width": v["width"]}, wide_epochs=v["epochs"])
        data = xor_cluster(P.n, P.n_test, P.p, P.eps)
        _, normal = experiments.xor_normal_run(P, data, progress=False, callback=self.live(
            P.wide_epochs, P.eval_every, lambda h: self.show((h, None, None))))
        weak_model, weak_run = experiments.xor_weak_run(P, data, seed=0)
        return normal, weak_run, experiments.xor_transfer_step(P, weak_model, data, seed=0)

    def plot(self, result):
        normal, _, transferred = result
        fig, ax = plt.subplots(figsize=self.figsize)
        plot_curves(normal, "acc", ax=ax, label="normal")
        if transferred is not None:
            ax.plot([1], [transferred.test_acc[-1]], marker="*", markersize=14,
                    linestyle="none", color=PALETTE[1], label="transferred, after 1 step")
        ax.legend(loc="lower right")
        return fig

    def describe(self, result):
        normal, weak, transferred = result
        text = f"normal: {measures.describe(normal)}"
        if weak is not None:
            text += f"<br>weak model: {weak.test_acc[-1]:.0%} test"
        if transferred is not None:
            text += (f" | transferred target after one step: {transferred.train_acc[-1]:.0%} "
                     f"train, {transferred.test_acc[-1]:.0%} test")
        return text


def xor_explorer(profile, initial: tuple | None = None):
    """Chapter 3's explorer (see :class:`XorExplorer`); ``initial`` is ``(normal run, weak
    run, one-step run)``."""
    return XorExplorer(profile, initial).widget()


# ---- chapters 4 and 5: methods side by side --------------------------------------------------

class MethodsExplorer(Explorer):
    """An explorer whose result is several methods' runs, ``{name: History}``: each method in
    its colour of every figure (:func:`grokbook.plots.method_colour`), test (solid) and train
    (dashed) accuracy, and epochs and seconds to 95% test underneath."""

    def plot(self, runs: dict[str, History]) -> plt.Figure:
        fig, ax = plt.subplots(figsize=self.figsize)
        for name, run in runs.items():
            color = method_colour(name)
            ax.plot(run.epoch[1:], run.test_acc[1:], color=color, label=f"{name} test")
            ax.plot(run.epoch[1:], run.train_acc[1:], color=color, linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy (dashed: train)")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(loc="lower right", fontsize=8)
        return fig

    def describe(self, runs: dict[str, History]) -> str:
        lines = []
        for name, run in runs.items():
            seconds = measures.seconds_to(run)
            lines.append(f"{name}: {measures.describe(run)}"
                         + ("" if seconds is None else f" | {seconds:.1f} s to 95% test"))
        return "<br>".join(lines)


class TransferExplorer(MethodsExplorer):
    """GrokTransfer live: pick the task, the weak model's embedding size and the test accuracy
    at which it stops; train the weak model, then the target twice, from ``A @ B`` and from
    scratch, each with its own (lr, weight decay) (the tuned ones to start with), both on one
    plot as they train."""

    def make_controls(self):
        import ipywidgets as w

        P = self.profile
        task = P.tasks[0]
        target, scratch = P.target[task], P.scratch[task]
        return {
            "task": w.ToggleButtons(options=list(P.tasks), value=task,
                                    description="task", style=STYLE),
            "d_w": _slider(w.IntSlider, "weak d_embed",
                           value=P.weak[task].model.d_embed, min=2, max=32),
            "stop": _slider(w.FloatSlider, "weak stops at",
                            value=P.weak[task].budget.stop_acc, min=0.05, max=0.95,
                            step=0.05),
            "lr": _slider(w.FloatLogSlider, "GT learning rate", value=target.optim.lr, base=10,
                          min=-4, max=-1, step=0.25),
            "wd": _slider(w.FloatSlider, "GT weight decay", value=target.optim.weight_decay,
                          min=0.0, max=5.0, step=0.1),
            "scratch_lr": _slider(w.FloatLogSlider, "scratch learning rate",
                                  value=scratch.optim.lr, base=10, min=-4, max=-1, step=0.25),
            "scratch_wd": _slider(w.FloatSlider, "scratch weight decay",
                                  value=scratch.optim.weight_decay, min=0.0, max=5.0, step=0.1),
            "epochs": _slider(w.IntSlider, "epochs", value=target.budget.epochs, min=200,
                              max=10000, step=200),
        }

    def run(self, v):
        P, epochs = self.profile, v["epochs"]
        budget = {"budget__epochs": epochs, "budget__eval_every": _eval_every(epochs)}
        method = P.grok_transfer(v["task"], weak={"model__d_embed": v["d_w"],
                                                  "budget__stop_acc": v["stop"]},
                                 optim__lr=v["lr"], optim__weight_decay=v["wd"], **budget)
        scratch = replace(P.scratch[v["task"]], optim__lr=v["scratch_lr"],
                          optim__weight_decay=v["scratch_wd"], **budget)
        self.status.value = "training the weak model..."
        return self.each({
            "GrokTransfer": lambda cb: method.run(0, progress=False, callback=cb).history,
            "scratch": lambda cb: experiments.train_run(scratch, 0, progress=False,
                                                        callback=cb).history,
        }, epochs, _eval_every(epochs))


def transfer_explorer(profile, initial: dict[str, History] | None = None):
    """Chapter 4's explorer (see :class:`TransferExplorer`)."""
    return TransferExplorer(profile, initial).widget()


RACERS = ("GrokTransfer", "plain", "GrokFast-EMA", "GrokFast-MA")


class AcceleratorRace(MethodsExplorer):
    """Race the accelerators on one plot: pick which of plain training, GrokFast-EMA,
    GrokFast-MA and GrokTransfer to run and their hyperparameters (plain training's tuned
    (lr, weight decay) for plain and GrokFast, GrokTransfer's own to start with); train the
    chapter's Transformer with each in turn (GrokTransfer first trains its weak FNN) and draw
    every curve as it grows, with epochs and seconds to 95% test underneath."""

    def make_controls(self):
        import ipywidgets as w

        P = self.profile
        tuned = P.methods()
        plain, target = tuned["plain"].optim, tuned["GrokTransfer"].target.optim
        return {
            "methods": w.SelectMultiple(options=RACERS, value=RACERS, rows=4,
                                        description="methods", style=STYLE),
            "lr": _slider(w.FloatLogSlider, "learning rate", value=plain.lr, base=10,
                          min=-4, max=-1, step=0.25),
            "wd": _slider(w.FloatSlider, "weight decay", value=plain.weight_decay,
                          min=0.0, max=5.0, step=0.1),
            "gt_lr": _slider(w.FloatLogSlider, "GT learning rate", value=target.lr, base=10,
                             min=-4, max=-1, step=0.25),
            "gt_wd": _slider(w.FloatSlider, "GT weight decay",
                             value=target.weight_decay, min=0.0, max=5.0, step=0.05),
            "alpha": _slider(w.FloatSlider, "EMA alpha", value=P.ema.alpha, min=0.5,
                             max=0.995, step=0.005),
            "lamb": _slider(w.FloatSlider, "EMA lambda", value=P.ema.lamb, min=0.0, max=10.0,
                            step=0.5),
            "window": _slider(w.IntSlider, "MA window", value=P.ma.window, min=10, max=200,
                              step=10),
            "epochs": _slider(w.IntSlider, "epochs", value=P.plain.budget.epochs, min=200,
                              max=10000, step=200),
        }

    def run(self, v):
        if not v["methods"]:
            raise ValueError(f"choose at least one of the methods: {', '.join(RACERS)}")
        P, epochs = self.profile, v["epochs"]
        budget = {"budget__epochs": epochs, "budget__eval_every": _eval_every(epochs)}
        P = replace(P, ema=GrokFastCfg("ema", alpha=v["alpha"], lamb=v["lamb"]),
                    ma=replace(P.ma, window=v["window"]), tuned_optim=(),
                    target=replace(P.target, optim__lr=v["gt_lr"],
                                   optim__weight_decay=v["gt_wd"], **budget))
        methods = P.methods(optim__lr=v["lr"], optim__weight_decay=v["wd"], **budget)
        return self.each({name: (lambda cb, m=methods[name]: experiments.run_method(
            m, 0, progress=False, callback=cb).history) for name in v["methods"]},
            epochs, _eval_every(epochs))


def accelerator_race(profile, initial: dict[str, History] | None = None):
    """Chapter 5's explorer (see :class:`AcceleratorRace`)."""
    return AcceleratorRace(profile, initial).widget()


class NeuralGrokRace(MethodsExplorer):
    """Race two of chapter 6's methods on one task: pick the task and the two methods; their
    (lr, weight decay) sliders jump to each method's tuned setting on that task whenever the
    task or a method changes (then change them at will); NeuralGrok's and TensorNorm's c and the
    epochs. Trains the chapter's FNN with each in turn on the same seed and draws both as they
    grow, with epochs and seconds to 95% test underneath."""

    def make_controls(self):
        import ipywidgets as w

        from grokbook.profiles.neuralgrok import METHODS

        P = self.profile
        controls = {
            "task": w.ToggleButtons(options=list(P.tasks), value=P.tasks[0],
                                    description="task", style=STYLE),
            "first": w.Dropdown(options=METHODS, value="NeuralGrok", description="method 1",
                                style=STYLE),
            # up to 1, the largest learning rate of chapters 6 and 8's tuning grid (tuning.grid_lrs)
            "lr": _slider(w.FloatLogSlider, "method 1 learning rate", value=1e-2, base=10,
                          min=-4, max=0, step=0.25),
            "wd": _slider(w.FloatSlider, "method 1 weight decay", value=1.0, min=0.0,
                          max=5.0, step=0.1),
            "second": w.Dropdown(options=METHODS, value="TensorNorm", description="method 2",
                                 style=STYLE),
            "lr2": _slider(w.FloatLogSlider, "method 2 learning rate", value=1e-2, base=10,
                           min=-4, max=0, step=0.25),
            "wd2": _slider(w.FloatSlider, "method 2 weight decay", value=1.0, min=0.0,
                           max=5.0, step=0.1),
            "c": _slider(w.FloatLogSlider, "c (NeuralGrok, TensorNorm)", value=P.neuralgrok.c,
                         base=10, min=-2, max=1, step=0.25),
            "epochs": _slider(w.IntSlider, "epochs", value=P.epochs(P.tasks[0]), min=200,
                              max=10000, step=200),
        }

        def retune(_=None) -> None:
            for key, lr, wd in (("first", "lr", "wd"), ("second", "lr2", "wd2")):
                optim = P.method(controls["task"].value, controls[key].value).optim
                controls[lr].value, controls[wd].value = optim.lr, optim.weight_decay

        def rebudget(_=None) -> None:  # the chapter's race budget on the task (a^2-b's longer)
            controls["epochs"].value = P.epochs(controls["task"].value)

        for key in ("task", "first", "second"):
            controls[key].observe(retune, names="value")
        controls["task"].observe(rebudget, names="value")
        retune()
        return controls

    def run(self, v):
        if (v["first"], v["lr"], v["wd"]) == (v["second"], v["lr2"], v["wd2"]):
            raise ValueError("choose two different methods, or two different settings")
        P, epochs = self.profile, v["epochs"]
        P = replace(P, neuralgrok=replace(P.neuralgrok, c=v["c"]),
                    tensor_norm=replace(P.tensor_norm, c=v["c"]))
        budget = {"budget__epochs": epochs, "budget__eval_every": _eval_every(epochs)}
        racers = {}
        for key, lr, wd in (("first", "lr", "wd"), ("second", "lr2", "wd2")):
            name = v[key] if v[key] not in racers else f"{v[key]} (2)"
            racers[name] = P.method(v["task"], v[key], optim__lr=v[lr],
                                    optim__weight_decay=v[wd], **budget)
        return self.each({name: (lambda cb, cfg=cfg: experiments.train_run(
            cfg, 0, progress=False, callback=cb).history) for name, cfg in racers.items()},
            epochs, _eval_every(epochs))


def neuralgrok_race(profile, initial: dict[str, History] | None = None):
    """Chapter 6's explorer (see :class:`NeuralGrokRace`)."""
    return NeuralGrokRace(profile, initial).widget()


class ProgressScrubber(Explorer):
    """Chapter 7: pick a measure and a seed and scrub through training: the embedding in the
    plane of its strongest key frequency (left) beside the measure's curve (right), both at the
    chosen epoch. ``initial``: ``{seed: History}`` of :func:`grokbook.experiments.progress_run`
    runs (their extras hold the measures and the circle); nothing trains here."""

    figsize = (8.0, 3.4)

    def __init__(self, profile: Any, initial: dict[int, History]):
        if not initial:
            raise ValueError("initial must map seeds to progress runs' Histories, got none")
        self.runs = dict(initial)
        super().__init__(profile, None)
        for control in self.controls.values():
            control.observe(lambda _change: self.click(), names="value")
        self.click()

    def make_controls(self) -> dict:
        import ipywidgets as w

        from grokbook.foresight import WATCHED

        first = next(iter(self.runs.values()))
        return {
            "measure": _slider(w.Dropdown, "measure", options=list(WATCHED),
                               value=WATCHED[0]),
            "seed": _slider(w.Dropdown, "seed", options=list(self.runs)),
            "epoch": _slider(w.SelectionSlider, "epoch", options=list(first.epoch),
                             value=first.epoch[len(first.epoch) // 2]),
        }

    def run(self, values: dict[str, Any]) -> tuple[History, str, int]:
        history = self.runs[values["seed"]]
        epochs = list(history.epoch)
        if list(self.controls["epoch"].options) != epochs:  # seeds stop at different epochs
            self.controls["epoch"].options = epochs
        epoch = min(epochs, key=lambda e: abs(e - values["epoch"]))
        return history, values["measure"], epoch

    def plot(self, result: tuple[History, str, int]) -> plt.Figure:
        from grokbook.foresight import LOG_SCALE, jump

        history, measure, epoch = result
        i = history.epoch.index(epoch)
        p = sum(1 for name in history.extras if name.startswith("circle_x_"))
        x = [history.extras[f"circle_x_{a}"][i] for a in range(p)]
        y = [history.extras[f"circle_y_{a}"][i] for a in range(p)]
        fig, (left, right) = plt.subplots(1, 2, figsize=self.figsize, layout="constrained")
        left.scatter(x, y, c=range(p), cmap="twilight", s=18)
        for a in range(0, p, max(1, p // 6)):
            left.annotate(str(a), (x[a], y[a]), fontsize=7)
        left.set_aspect("equal", adjustable="datalim")
        left.set_title(f"embedding at epoch {epoch}")
        left.set_xlabel("key-frequency plane, cos")
        left.set_ylabel("sin")
        right.plot(history.epoch, history.column(measure), color=PALETTE[0])
        if measure in LOG_SCALE:
            right.set_yscale("log")
        right.axvline(epoch, color="black", linewidth=1)
        grok = jump(history)
        if grok is not None:
            right.axvline(grok, color=PALETTE[3], linestyle="--", linewidth=1,
                          label="50% test accuracy")
            right.legend(fontsize=8)
        right.set_title(measure.replace("_", " "))
        right.set_xlabel("epoch")
        right.set_ylabel(measure.replace("_", " "))
        return fig

    def describe(self, result: tuple[History, str, int]) -> str:
        history, measure, epoch = result
        i = history.epoch.index(epoch)
        return (f"epoch {epoch}: {measure.replace('_', ' ')} {history.column(measure)[i]:.3g}, "
                f"test accuracy {history.test_acc[i]:.1%}")

    def widget(self):
        import ipywidgets as w

        return w.VBox([w.VBox(list(self.controls.values())), self.status, self.figure])


def progress_scrubber(profile, initial: dict[int, History]):
    """The chapter-7 widget (:class:`ProgressScrubber`), ready to display."""
    return ProgressScrubber(profile, initial).widget()


class LeaderboardExplorer(Explorer):
    """Chapter 8: re-rank the shoot-out by another unit, task or confidence level: the ranked
    strip plot of every seed and the leaderboard redraw at once. ``initial``: the race's
    table (``grokbook.leaderboard.per_run``); nothing trains here."""

    figsize = (8.0, 3.6)

    def __init__(self, profile: Any, initial):
        if initial is None or len(initial) == 0:
            raise ValueError("initial must be the shoot-out's table of runs, got none")
        self.table = initial
        super().__init__(profile, None)
        for control in self.controls.values():
            control.observe(lambda _change: self.click(), names="value")
        self.click()

    def make_controls(self) -> dict:
        import ipywidgets as w

        from grokbook.leaderboard import UNITS

        tasks = list(dict.fromkeys(self.table.task))
        return {
            "task": _slider(w.Dropdown, "task", options=[(self.label(t), t) for t in tasks],
                            value=tasks[0]),
            "unit": _slider(w.Dropdown, "ranked by",
                            options=[(label, unit) for unit, label in UNITS.items()],
                            value="gflop"),
            "confidence": _slider(w.SelectionSlider, "interval",
                                  options=[0.5, 0.8, 0.9, 0.95, 0.99], value=0.95),
        }

    def run(self, values: dict[str, Any]):
        from grokbook.leaderboard import board

        rows = self.table[self.table.task == values["task"]]
        return rows, values["unit"], board(rows, values["unit"], values["confidence"])

    def plot(self, result) -> plt.Figure:
        from grokbook.leaderboard import UNITS
        from grokbook.plots import plot_ranked

        rows, unit, ranked = result
        fig, ax = plt.subplots(figsize=self.figsize, layout="constrained")
        plot_ranked(ax, rows, ranked, unit)
        ax.set_title(f"{self.label(rows.task.iloc[0])}, ranked by {UNITS[unit]}")
        return fig

    def label(self, task: str) -> str:
        """A task's name for reading: the shoot-out profile's label (``a + b``,
        ``a + b, Transformer``), the table's name without a profile."""
        return task if self.profile is None else self.profile.label(task)

    def describe(self, result) -> str:
        _rows, _unit, ranked = result
        firsts = list(ranked.index[ranked["rank"] == 1])
        return f"rank 1: {', '.join(firsts)}"

    def widget(self):
        import ipywidgets as w

        return w.VBox([w.VBox(list(self.controls.values())), self.status, self.figure])


def leaderboard_explorer(profile, initial):
    """The chapter-8 widget (:class:`LeaderboardExplorer`), ready to display."""
    return LeaderboardExplorer(profile, initial).widget()
