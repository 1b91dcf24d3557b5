"""Interactive controls for the chapters: train live and watch the curves move."""

from __future__ import annotations

import matplotlib.pyplot as plt

from grokbook import measures
from grokbook.models import make_model
from grokbook.plots import training_figure
from grokbook.tasks import is_prime, modular_arithmetic
from grokbook.train import History, train

PRIMES = tuple(n for n in range(17, 114) if is_prime(n))
REDRAWS = 15  # redraw the figure about this many times per run


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
    from IPython.display import clear_output, display

    train_settings = settings["fnn_train"]
    style = {"description_width": "90px"}
    layout = w.Layout(width="340px")
    controls = {
        "model": w.ToggleButtons(options=["fnn", "transformer"], value="fnn",
                                 description="model", style=style),
        "p": w.SelectionSlider(options=PRIMES, value=min(PRIMES, key=lambda q: abs(
            q - settings["p"])), description="p (prime)", style=style, layout=layout),
        "frac": w.FloatSlider(value=settings["frac"], min=0.1, max=0.9, step=0.05,
                              description="train fraction", style=style, layout=layout),
        "lr": w.FloatLogSlider(value=train_settings["lr"], base=10, min=-4, max=-1, step=0.25,
                               description="learning rate", style=style, layout=layout),
        "wd": w.FloatSlider(value=train_settings["weight_decay"], min=0.0, max=5.0, step=0.1,
                            description="weight decay", style=style, layout=layout),
        "init": w.FloatLogSlider(value=settings["fnn"]["init_scale"], base=2, min=-2, max=3,
                                 step=0.5, description="init scale", style=style,
                                 layout=layout),
        "epochs": w.IntSlider(value=train_settings["epochs"], min=200, max=20000, step=200,
                              description="epochs", style=style, layout=layout),
    }
    button = w.Button(description="Train", button_style="primary", icon="play")
    status = w.HTML()
    figure = w.Output()

    def draw(history: History, title: str) -> None:
        with figure:
            clear_output(wait=True)
            fig = training_figure(history, title=title)
            display(fig)
            plt.close(fig)

    def run(_=None) -> None:
        button.disabled = True
        kind = controls["model"].value
        try:
            data = modular_arithmetic("add", controls["p"].value, controls["frac"].value)
            options = dict(settings[kind], init_scale=controls["init"].value)
            model = make_model(kind, data.vocab_size, data.n_classes, **options)
            epochs = controls["epochs"].value
            eval_every = max(1, epochs // 200)
            title = (f"{kind}, a+b mod {data.p}, frac {data.frac:.2f}, "
                     f"lr {controls['lr'].value:.0e}, wd {controls['wd'].value:.1f}, "
                     f"init x{controls['init'].value:.2g}")
            every = max(1, epochs // eval_every // REDRAWS)

            def redraw(history: History) -> None:
                if len(history) % every == 0:
                    draw(history, title)
                    status.value = f"epoch {history.epoch[-1]} / {epochs}"

            history = train(model, data, epochs=epochs, lr=controls["lr"].value,
                            weight_decay=controls["wd"].value, eval_every=eval_every,
                            warmup_steps=settings[f"{kind}_train"].get("warmup_steps", 0),
                            callback=redraw, progress=False)
            draw(history, title)
            status.value = measures.describe(history)
        except ValueError as error:
            status.value = f"<b>error:</b> {error}"
        finally:
            button.disabled = False

    button.on_click(run)
    if initial is not None:
        draw(initial, "the chapter's FNN run (press Train for your own)")
        status.value = measures.describe(initial)
    left = w.VBox([*controls.values(), button])
    return w.VBox([left, status, figure])
