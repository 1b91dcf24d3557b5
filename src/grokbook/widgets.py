"""Interactive controls for the chapters: train live and watch the curves move."""

from __future__ import annotations

from collections.abc import Callable

import matplotlib.pyplot as plt
import torch

from grokbook import measures
from grokbook.embeddings import FixedEmbedding
from grokbook.models import make_model
from grokbook.plots import PALETTE, plot_curves, plot_embedding, training_figure
from grokbook.tasks import is_prime, modular_arithmetic
from grokbook.train import History, train

PRIMES = tuple(n for n in range(17, 114) if is_prime(n))
REDRAWS = 15  # redraw the figure about this many times per run
STYLE = {"description_width": "90px"}
LAYOUT = {"width": "340px"}


def _slider(kind, description: str, **options):
    """An ipywidgets control of class ``kind`` in the explorers' style and width."""
    import ipywidgets as w

    return kind(description=description, style=STYLE, layout=w.Layout(**LAYOUT), **options)


def _nearest(options, value):
    """The option closest to ``value`` (a slider's start when ``value`` is not an option)."""
    return min(options, key=lambda option: abs(option - value))


def _show(output, fig: plt.Figure) -> None:
    """Replace what ``output`` (an ``ipywidgets.Output``) shows by ``fig``."""
    from IPython.display import clear_output, display

    with output:
        clear_output(wait=True)
        display(fig)
        plt.close(fig)


def _training_sliders(frac: float, lr: float, weight_decay: float, init_scale: float,
                      epochs: int) -> dict:
    """The sliders every explorer shares: train fraction, lr, weight decay, init, epochs."""
    import ipywidgets as w

    make = _slider
    return {
        "frac": make(w.FloatSlider, "train fraction", value=frac, min=0.1, max=0.9, step=0.05),
        "lr": make(w.FloatLogSlider, "learning rate", value=lr, base=10, min=-4, max=-0.5,
                   step=0.25),
        "wd": make(w.FloatSlider, "weight decay", value=weight_decay, min=0.0, max=5.0,
                   step=0.1),
        "init": make(w.FloatLogSlider, "init scale", value=init_scale, base=2, min=-3, max=3,
                     step=0.25),
        "epochs": make(w.IntSlider, "epochs", value=epochs, min=200, max=20000, step=200),
    }


def _train_live_with(fit: Callable, epochs: int, eval_every: int,
                     draw: Callable[[History], None], status) -> History:
    """Run ``fit(callback)`` with a callback that redraws about REDRAWS times."""
    every = max(1, epochs // eval_every // REDRAWS)

    def redraw(history: History) -> None:
        if len(history) % every == 0:
            draw(history)
            status.value = f"epoch {history.epoch[-1]} / {epochs}"

    return fit(redraw)


def _train_live(model, data, controls: dict, draw: Callable[[History], None], status,
                warmup_steps: int = 0) -> History:
    """Train ``model`` with the sliders' settings, calling ``draw`` about REDRAWS times."""
    epochs = controls["epochs"].value
    eval_every = max(1, epochs // 200)
    history = _train_live_with(
        lambda callback: train(model, data, epochs=epochs, lr=controls["lr"].value,
                               weight_decay=controls["wd"].value, eval_every=eval_every,
                               warmup_steps=warmup_steps, callback=callback, progress=False),
        epochs, eval_every, draw, status)
    draw(history)
    status.value = measures.describe(history)
    return history


def _train_each_live(entries, data, epochs: int, show: Callable[[dict], None],
                     status) -> dict[str, History]:
    """Train ``entries`` (``{name: (model, train options)}``, or a callable giving that pair,
    called when its turn comes) one after another for ``epochs``; after each redraw, ``show``
    gets every run so far, the current one included."""
    runs: dict[str, History] = {}
    eval_every = max(1, epochs // 200)
    for name, entry in entries.items():
        model, options = entry() if callable(entry) else entry

        def draw(history: History, name: str = name) -> None:
            show({**runs, name: history})

        runs[name] = _train_live_with(
            lambda callback, model=model, options=options: train(
                model, data, epochs=epochs, eval_every=eval_every, callback=callback,
                progress=False, **options),
            epochs, eval_every, draw, status)
    show(runs)
    return runs


def _with_button(controls: dict, run: Callable[[], None], status):
    """A Train button that runs ``run`` with the controls disabled and reports bad settings
    in ``status`` instead of a traceback."""
    import ipywidgets as w

    button = w.Button(description="Train", button_style="primary", icon="play")

    def clicked(_=None) -> None:
        button.disabled = True
        try:
            run()
        except ValueError as error:
            status.value = f"<b>error:</b> {error}"
        finally:
            button.disabled = False

    button.on_click(clicked)
    return button


def grokking_explorer(settings: dict, initial: History | None = None):
    """Sliders for p, train fraction, lr, weight decay, init scale and epochs; a button trains a
    model on a+b mod p live and redraws accuracy, loss and weight norm as it goes.

    Args:
        settings: a chapter profile with ``p``, ``frac``, ``fnn``, ``fnn_train``,
            ``transformer`` and ``transformer_train`` (see ``grokbook.profiles``): the start
            values of the sliders and the model sizes.
        initial: a run to show before the first click (so a static page shows a figure).
    """
    import ipywidgets as w

    start = settings["fnn_train"]
    controls = {
        "model": w.ToggleButtons(options=["fnn", "transformer"], value="fnn",
                                 description="model", style=STYLE),
        "p": _slider(w.SelectionSlider, "p (prime)", options=PRIMES,
                     value=_nearest(PRIMES, settings["p"])),
        **_training_sliders(settings["frac"], start["lr"], start["weight_decay"],
                            settings["fnn"]["init_scale"], start["epochs"]),
    }
    status = w.HTML()
    figure = w.Output()

    def show(history: History, title: str) -> None:
        _show(figure, training_figure(history, title=title))

    def run() -> None:
        kind = controls["model"].value
        data = modular_arithmetic("add", controls["p"].value, controls["frac"].value)
        options = dict(settings[kind], init_scale=controls["init"].value)
        model = make_model(kind, data.vocab_size, data.n_classes, **options)
        title = (f"{kind}, a+b mod {data.p}, frac {data.frac:.2f}, "
                 f"lr {controls['lr'].value:.0e}, wd {controls['wd'].value:.1f}, "
                 f"init x{controls['init'].value:.2g}")
        _train_live(model, data, controls, lambda history: show(history, title), status,
                    warmup_steps=settings[f"{kind}_train"].get("warmup_steps", 0))

    button = _with_button(controls, run, status)
    if initial is not None:
        show(initial, "the chapter's FNN run (press Train for your own)")
        status.value = measures.describe(initial)
    return w.VBox([w.VBox([*controls.values(), button]), status, figure])


def embedding_explorer(settings: dict, tables: dict[str, torch.Tensor],
                       initial: dict[str, History] | None = None):
    """Pick a fixed input embedding, set the hyperparameters, and train the FNN of chapter 2 on
    a+b mod p live: accuracy curves on the left, the embedding's PCA picture on the right.

    Args:
        settings: the ``embeddings`` chapter profile (``frac``, ``fnn``, ``hyper``, ``epochs``):
            choosing an embedding sets the sliders to its (init, lr, wd) there.
        tables: name -> unit-row table of shape ``(p, d)``; all of one ``p``, the modulus.
        initial: name -> a run to show before the first click.
    """
    import ipywidgets as w

    sizes = {len(table) for table in tables.values()}
    if not tables or len(sizes) != 1:
        raise ValueError(f"tables must hold at least one table, all with one row per number "
                         f"0..p-1 of the same p; got row counts {sorted(sizes)}")
    p = sizes.pop()
    names = list(tables)
    first = settings["hyper"][names[0]]
    controls = {
        "embedding": w.ToggleButtons(options=names, value=names[0], description="embedding",
                                     style=STYLE),
        **_training_sliders(settings["frac"], first["lr"], first["weight_decay"],
                            first["init_scale"], settings["epochs"]),
    }
    status = w.HTML()
    figure = w.Output()

    def show(history: History | None) -> None:
        name = controls["embedding"].value
        fig, (curves, pca) = plt.subplots(1, 2, figsize=(10, 3.4))
        if history is not None:
            plot_curves(history, "acc", ax=curves)
        curves.set_title(f"{name} embedding, a+b mod {p}")
        plot_embedding(pca, tables[name], title=f"the {name} table, first two PCs")
        _show(figure, fig)

    def choose(change) -> None:
        hyper = settings["hyper"].get(change["new"])
        if hyper:
            controls["lr"].value = hyper["lr"]
            controls["wd"].value = hyper["weight_decay"]
            controls["init"].value = hyper["init_scale"]
        run_ = (initial or {}).get(change["new"])
        show(run_)
        status.value = measures.describe(run_) if run_ is not None else "press Train"

    def run() -> None:
        name = controls["embedding"].value
        data = modular_arithmetic("add", p, controls["frac"].value)
        model = make_model("fnn", p, p, **settings["fnn"], init_scale=controls["init"].value,
                           embedding=FixedEmbedding(tables[name]))
        _train_live(model, data, controls, show, status)

    controls["embedding"].observe(choose, names="value")
    button = _with_button(controls, run, status)
    choose({"new": names[0]})
    return w.VBox([w.VBox([*controls.values(), button]), status, figure])


def xor_explorer(settings: dict, initial: tuple[History, History] | None = None):
    """Sliders for the XOR cluster problem (eps, n, p, width, epochs): a button trains the wide
    network normally, live, then a 3-neuron weak model and the transferred target's single
    step, and draws both on one plot: the delay appears and vanishes.

    Args:
        settings: the ``xor`` chapter profile (start values, init scales, lr, weight decay,
            ``m``, ``v_init`` and ``step``).
        initial: ``(normal run, one-step run)`` to show before the first click.
    """
    import ipywidgets as w

    from grokbook import xor

    make = _slider
    dimensions = (100, 300, 1000, 3000, 10000)
    controls = {
        "eps": make(w.FloatSlider, "noise eps", value=settings["eps"], min=0.0, max=0.5,
                    step=0.01),
        "n": make(w.IntSlider, "train size n", value=settings["n"], min=50, max=2000, step=50),
        "p": make(w.SelectionSlider, "dimension p", options=dimensions,
                  value=_nearest(dimensions, settings["p"])),
        "width": make(w.IntSlider, "width", value=settings["wide"]["width"], min=8, max=512,
                      step=8),
        "epochs": make(w.IntSlider, "epochs", value=settings["wide_epochs"], min=50,
                       max=2000, step=50),
    }
    status = w.HTML()
    figure = w.Output()

    def show(normal: History, transferred: History | None) -> None:
        fig, ax = plt.subplots(figsize=(7, 3.4))
        plot_curves(normal, "acc", ax=ax, label="normal")
        if transferred is not None:
            ax.plot([1], [transferred.test_acc[-1]], marker="*", markersize=14,
                    linestyle="none", color=PALETTE[1], label="transferred, after 1 step")
        ax.legend(loc="lower right")
        _show(figure, fig)

    def run() -> None:
        values = {name: control.value for name, control in controls.items()}
        data = xor.xor_cluster(values["n"], settings["n_test"], values["p"], values["eps"])
        wide = xor.TwoLayerReLU(values["p"], values["width"], settings["wide"]["w_init"],
                                settings["wide"]["a_init"])
        normal = _train_live_with(
            lambda callback: xor.fit(wide, data, values["epochs"], settings["lr"],
                                     settings["weight_decay"], settings["eval_every"],
                                     callback=callback, progress=False),
            values["epochs"], settings["eval_every"], lambda h: show(h, None), status)
        weak = xor.TwoLayerReLU(values["p"], 3, **settings["weak"])
        weak_run = xor.fit(weak, data, settings["weak_epochs"], settings["lr"],
                           settings["weight_decay"], progress=False)
        target = xor.TransferredNet(weak.hidden.weight.detach().T, settings["m"],
                                    settings["v_init"])
        transferred = xor.one_step(target, data, settings["step"])
        show(normal, transferred)
        status.value = (f"normal: {measures.describe(normal)}<br>weak model: "
                        f"{weak_run.test_acc[-1]:.0%} test | transferred target after one "
                        f"step: {transferred.train_acc[-1]:.0%} train, "
                        f"{transferred.test_acc[-1]:.0%} test")

    button = _with_button(controls, run, status)
    if initial is not None:
        show(*initial)
        status.value = measures.describe(initial[0])
    return w.VBox([w.VBox([*controls.values(), button]), status, figure])


def transfer_explorer(settings: dict, initial: dict[str, History] | None = None):
    """GrokTransfer live: pick the task, the weak model's embedding size and the test accuracy
    at which it stops; a button trains the weak model, then the target twice, from ``A @ B``
    and from scratch with the same settings, and draws both on one plot as they train.

    Args:
        settings: the ``transfer`` chapter profile (``p``, ``frac``, ``weak`` per task,
            ``weak_train``, ``weak_stop_acc``, ``target``, ``transfer_init``, ``scratch_init``,
            ``transfer_train``; see ``grokbook.profiles``).
        initial: ``{"transfer": History, "scratch": History}`` to show before the first click.
    """
    import ipywidgets as w

    from grokbook import transfer

    start = settings["transfer_train"]
    controls = {
        "task": w.ToggleButtons(options=["add", "mul"], value="add", description="task",
                                style=STYLE),
        "d_w": _slider(w.IntSlider, "weak d_embed", value=settings["weak"]["add"]["d_embed"],
                       min=2, max=32),
        "stop": _slider(w.FloatSlider, "weak stops at", value=settings["weak_stop_acc"],
                        min=0.05, max=0.95, step=0.05),
        "lr": _slider(w.FloatLogSlider, "learning rate", value=start["lr"], base=10, min=-4,
                      max=-1, step=0.25),
        "wd": _slider(w.FloatSlider, "weight decay", value=start["weight_decay"], min=0.0,
                      max=5.0, step=0.1),
        "epochs": _slider(w.IntSlider, "epochs", value=start["epochs"], min=200, max=10000,
                          step=200),
    }
    status = w.HTML()
    figure = w.Output()

    def show(runs: dict[str, History]) -> None:
        fig, ax = plt.subplots(figsize=(7.5, 3.4))
        for color, (name, run_) in zip(PALETTE, runs.items()):
            plot_curves(run_, "acc", ax=ax, color=color, label=name)
        ax.legend(loc="lower right")
        _show(figure, fig)

    def run() -> None:
        values = {name: control.value for name, control in controls.items()}
        data = modular_arithmetic(values["task"], settings["p"], settings["frac"])
        weak = make_model("fnn", data.vocab_size, data.n_classes,
                          **dict(settings["weak"][values["task"]], d_embed=values["d_w"]))
        status.value = "training the weak model..."
        weak_run = train(weak, data, **settings["weak_train"], stop_acc=values["stop"],
                         progress=False)
        targets = {
            "GrokTransfer": transfer.fnn_target(transfer.weak_embedding(weak), data.n_classes,
                                                vocab_size=data.vocab_size,
                                                init_scale=settings["transfer_init"],
                                                **settings["target"]),
            "scratch": make_model("fnn", data.vocab_size, data.n_classes,
                                  init_scale=settings["scratch_init"], **settings["target"]),
        }
        options = {"lr": values["lr"], "weight_decay": values["wd"]}
        runs = _train_each_live({name: (model, options) for name, model in targets.items()},
                                data, values["epochs"], show, status)
        status.value = (f"weak model: {weak_run.test_acc[-1]:.0%} test after "
                        f"{weak_run.epoch[-1]} epochs<br>" + "<br>".join(
                            f"{name}: {measures.describe(run_)}" for name, run_ in runs.items()))

    button = _with_button(controls, run, status)
    if initial is not None:
        show(initial)
        status.value = "<br>".join(f"{name}: {measures.describe(run_)}"
                                   for name, run_ in initial.items())
    return w.VBox([w.VBox([*controls.values(), button]), status, figure])


RACERS = ("plain", "GrokFast-EMA", "GrokFast-MA", "GrokTransfer")


def accelerator_race(settings: dict, initial: dict[str, History] | None = None):
    """Race the accelerators on one plot: pick which of plain training, GrokFast-EMA,
    GrokFast-MA and GrokTransfer to run and their hyperparameters; a button trains the
    chapter's Transformer with each in turn (GrokTransfer first trains its weak FNN) and draws
    every test-accuracy curve as it grows, with epochs and seconds to 95% test underneath.

    Args:
        settings: the ``cross`` chapter profile (``p``, ``frac``, ``weak``, ``weak_train``,
            ``weak_stop_acc``, ``transformer``, ``transfer_init``, ``scratch_init``,
            ``transfer_train``, ``scratch_train``, ``grokfast``; see ``grokbook.profiles``).
        initial: ``{method: History}`` to show before the first click.
    """
    import ipywidgets as w

    from grokbook import transfer
    from grokbook.accelerators import GrokFastEMA, GrokFastMA

    plain, gt = settings["scratch_train"], settings["transfer_train"]
    ema, ma = settings["grokfast"]["ema"], settings["grokfast"]["ma"]
    controls = {
        "methods": w.SelectMultiple(options=RACERS, value=RACERS, rows=4,
                                    description="methods", style=STYLE),
        "lr": _slider(w.FloatLogSlider, "learning rate", value=plain["lr"], base=10, min=-4,
                      max=-1, step=0.25),
        "wd": _slider(w.FloatSlider, "weight decay", value=plain["weight_decay"], min=0.0,
                      max=5.0, step=0.1),
        "gt_wd": _slider(w.FloatSlider, "GT weight decay", value=gt["weight_decay"], min=0.0,
                         max=5.0, step=0.05),
        "alpha": _slider(w.FloatSlider, "EMA alpha", value=ema["alpha"], min=0.5, max=0.995,
                         step=0.005),
        "lamb": _slider(w.FloatSlider, "EMA lambda", value=ema["lamb"], min=0.0, max=10.0,
                        step=0.5),
        "window": _slider(w.IntSlider, "MA window", value=ma["window"], min=10, max=200,
                          step=10),
        "epochs": _slider(w.IntSlider, "epochs", value=plain["epochs"], min=200, max=10000,
                          step=200),
    }
    status = w.HTML()
    figure = w.Output()

    def show(runs: dict[str, History]) -> None:
        fig, ax = plt.subplots(figsize=(7.5, 3.4))
        for name, run_ in runs.items():
            color = PALETTE[RACERS.index(name) % len(PALETTE)]
            ax.plot(run_.epoch[1:], run_.test_acc[1:], color=color, label=f"{name} test")
            ax.plot(run_.epoch[1:], run_.train_acc[1:], color=color, linestyle="--",
                    linewidth=1)
        ax.set_xscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy (dashed: train)")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(loc="lower right", fontsize=8)
        _show(figure, fig)

    def describe(runs: dict[str, History]) -> str:
        lines = []
        for name, run_ in runs.items():
            seconds = measures.seconds_to(run_)
            lines.append(f"{name}: {measures.describe(run_)}" + (
                "" if seconds is None else f" | {seconds:.1f} s to 95% test"))
        return "<br>".join(lines)

    def build(name: str, values: dict, data):
        # The Transformer for one racer and its training options.
        options = {"lr": values["lr"], "weight_decay": values["wd"],
                   "warmup_steps": plain.get("warmup_steps", 0),
                   "stop_acc": settings["stop_acc"], "stop_patience": settings["stop_patience"]}
        if name != "GrokTransfer":
            model = make_model("transformer", data.vocab_size, data.n_classes,
                               init_scale=settings["scratch_init"], **settings["transformer"])
            filters = {"GrokFast-EMA": lambda: GrokFastEMA(values["alpha"], values["lamb"]),
                       "GrokFast-MA": lambda: GrokFastMA(values["window"], ma["lamb"])}
            return model, dict(options, grad_transform=filters.get(name, lambda: None)())
        status.value = "training the weak FNN..."
        weak = make_model("fnn", data.vocab_size, data.n_classes, **settings["weak"])
        train(weak, data, **settings["weak_train"], stop_acc=settings["weak_stop_acc"],
              progress=False)
        model = transfer.transformer_target(transfer.weak_embedding(weak), data.n_classes,
                                            vocab_size=data.vocab_size,
                                            init_scale=settings["transfer_init"],
                                            **settings["transformer"])
        return model, dict(options, weight_decay=values["gt_wd"])

    def run() -> None:
        values = {name: control.value for name, control in controls.items()}
        if not values["methods"]:
            raise ValueError(f"choose at least one of the methods: {', '.join(RACERS)}")
        data = modular_arithmetic("add", settings["p"], settings["frac"])
        runs = _train_each_live({name: lambda name=name: build(name, values, data)
                                 for name in values["methods"]},
                                data, values["epochs"], show, status)
        status.value = describe(runs)

    button = _with_button(controls, run, status)
    if initial is not None:
        show(initial)
        status.value = describe(initial)
    return w.VBox([w.VBox([*controls.values(), button]), status, figure])
