import re

import nbformat
import pytest

from grokbook import chapters


def test_chapters_are_found_by_number_name_and_path():
    first = chapters.list_chapters()[0]
    assert first.name == "01_grokking.ipynb"
    assert chapters.find_chapter("1") == chapters.find_chapter("01") == first
    assert chapters.find_chapter("grokking") == chapters.find_chapter(str(first)) == first
    assert chapters.find_chapter("xor").name == "03_xor.ipynb"
    with pytest.raises(ValueError, match="unknown chapter 'quantum'"):
        chapters.find_chapter("quantum")


def test_clean_strips_papermill_metadata():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    nb.metadata["papermill"] = {"duration": 1}
    nb.cells[0].metadata.update(papermill={"duration": 1}, execution={"a": 1}, tags=["x"])
    cleaned = chapters.clean(nb)
    assert "papermill" not in cleaned.metadata
    assert cleaned.cells[0].metadata == {"tags": ["x"]}
    assert cleaned.metadata["kernelspec"]["name"] == "python3"


def test_cell_times_append_each_code_cell_with_its_seconds(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("\nx = 1\ny = 2"), nbformat.v4.new_markdown_cell("text"),
        nbformat.v4.new_code_cell("print(x)")])
    nb.cells[0].metadata["papermill"] = {"duration": 1.234}
    nb.cells[1].metadata["papermill"] = {"duration": 0.1}
    nb.cells[2].metadata["papermill"] = {"duration": 0.5}
    table = tmp_path / "times.csv"
    chapters.write_cell_times(nb, "01_grokking", "ci", table)
    chapters.write_cell_times(nb, "02_embeddings", "ci", table)
    lines = table.read_text().splitlines()
    assert lines[0] == ",".join(chapters.CELL_TIME_COLUMNS)
    assert lines[1] == f"01_grokking,ci,0,{nb.cells[0].id},1.23,x = 1"
    assert [line.split(",")[0] for line in lines[1:]] == ["01_grokking"] * 2 + \
        ["02_embeddings"] * 2


@pytest.mark.parametrize("path", chapters.list_chapters(), ids=lambda p: p.stem)
def test_committed_chapter_is_clean_and_complete(path):
    nb = nbformat.read(path, as_version=4)  # sources and texts as strings
    cells = nb["cells"]
    tags = [set(c.get("metadata", {}).get("tags", [])) for c in cells]
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert "papermill" not in nb["metadata"]
    assert not any("papermill" in c["metadata"] or "execution" in c["metadata"] for c in cells)
    params = [c for c, t in zip(cells, tags) if "parameters" in t]
    assert params and re.search(r"^profile\s*=", params[0]["source"], re.M)
    claims = [c for c, t in zip(cells, tags) if "nbval-check-output" in t]
    assert len(claims) == 1 and claims[0] is [c for c in cells if c["cell_type"] == "code"][-1]
    outputs = [o for c in cells if c["cell_type"] == "code" for o in c["outputs"]]
    assert not any(o["output_type"] == "error" for o in outputs)
    assert any("image/png" in o.get("data", {}) for o in outputs)
    claim_lines = "".join(o.get("text", "") for o in claims[0]["outputs"]).splitlines()
    assert claim_lines and claim_lines[0].startswith("PASS: ")
    assert all(line.startswith(("PASS: ", " " * 6)) for line in claim_lines)
    assert path.stat().st_size < 3_000_000


def test_runtimes_keep_one_row_per_chapter_profile_and_cache_state(tmp_path):
    table = tmp_path / "runtimes.csv"
    table.write_text("chapter,profile,seconds,cached,date,machine\n01_grokking,book,,,,\n")
    chapters.record_runtime("01_grokking", "book", 300.4, 120, "cold", table)
    chapters.record_runtime("01_grokking", "book", 20.0, 0, "warm", table)
    chapters.record_runtime("01_grokking", "book", 290.0, 120, "cold", table)
    chapters.record_runtime("02_embeddings", "ci", 9.0, None, "off", table)
    lines = table.read_text().splitlines()
    assert lines[0] == ",".join(chapters.RUNTIME_COLUMNS)
    rows = [line.split(",") for line in lines[1:]]
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        ("01_grokking", "book", "290", "120", "cold"), ("01_grokking", "book", "20", "0", "warm"),
        ("02_embeddings", "ci", "9", "", "off")]
    assert not list(tmp_path.glob("*.tmp*"))


def test_the_runtimes_machine_names_the_cpu_model_and_a_gpu(monkeypatch):
    """Rows of two machines must be told apart: the machine column names the CPU model, the
    core count, the torch build and the threads, and a GPU when there is one."""
    import torch

    from grokbook import cache

    monkeypatch.setattr(cache, "cpu_model", lambda: "Some CPU 9000")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cpu_only = chapters.machine()
    assert "(Some CPU 9000)" in cpu_only and "GPU" not in cpu_only
    assert f"torch {torch.__version__} on {torch.get_num_threads()} threads" in cpu_only
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda: "Some GPU")
    assert ", GPU Some GPU, torch" in chapters.machine()


def test_claims_keep_one_set_per_chapter_and_profile(tmp_path):
    import csv

    table = tmp_path / "claims.csv"
    first = [{"claim": "a, with a comma", "holds": True, "figures": "median 3\n(1, 3, 5)"},
             {"claim": "b", "holds": True, "figures": ""}]
    chapters.record_claims("01_grokking", "book", first, table)
    chapters.record_claims("02_embeddings", "book", [{"claim": "c", "holds": True}], table)
    chapters.record_claims("01_grokking", "book", first[:1], table)  # a re-run replaces
    with open(table, newline="") as file:
        rows = list(csv.DictReader(file))
    assert tuple(rows[0]) == chapters.CLAIM_COLUMNS
    assert [(r["chapter"], r["claim"], r["holds"], r["measured"]) for r in rows] == [
        ("01_grokking", "a, with a comma", "yes", "median 3 (1, 3, 5)"),
        ("02_embeddings", "c", "yes", "")]


def test_a_sliced_poll_keeps_its_timeout_and_finds_a_message_sent_slices_later():
    """The kernel client's channel polls in short slices: an empty channel still raises
    Empty at its timeout (not a slice early, not much later), and a wait without a timeout
    gets a message sent several slices after it began."""
    import asyncio
    import time
    from queue import Empty

    import zmq
    import zmq.asyncio
    from jupyter_client.channels import AsyncZMQSocketChannel
    from jupyter_client.session import Session

    from grokbook.kernel import POLL_SLICE, SlicedPollChannel

    polls = []  # the timeout of every poll the sliced channel makes
    stock = AsyncZMQSocketChannel.get_msg

    async def polled(self, timeout=None):
        polls.append(timeout)
        return await stock(self, timeout)

    async def main():
        sender = zmq.Context().socket(zmq.PAIR)
        receiver = zmq.asyncio.Context().socket(zmq.PAIR)
        port = sender.bind_to_random_port("tcp://127.0.0.1")
        receiver.connect(f"tcp://127.0.0.1:{port}")
        session = Session()
        channel = SlicedPollChannel(receiver, session)
        start = time.monotonic()
        with pytest.raises(Empty):
            await channel.get_msg(timeout=2.5 * POLL_SLICE)
        waited = time.monotonic() - start

        async def reply_later():
            await asyncio.sleep(3 * POLL_SLICE)
            session.send(sender, "execute_reply", {"status": "ok"})

        task = asyncio.create_task(reply_later())
        before = len(polls)
        message = await channel.get_msg(timeout=None)
        waits = len(polls) - before
        await task
        sender.close(linger=0)
        receiver.close(linger=0)
        return waited, message, waits

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(AsyncZMQSocketChannel, "get_msg", polled)
        waited, message, waits = asyncio.run(main())
    assert 2.5 * POLL_SLICE <= waited < 2.5 * POLL_SLICE + 2
    assert all(t is not None and t <= POLL_SLICE for t in polls)  # never one long sleep
    assert waits >= 3  # the wait without a timeout went on, slice after slice
    assert message["msg_type"] == "execute_reply" and message["content"] == {"status": "ok"}


def test_execute_runs_a_widget_notebook_through_the_sliced_kernel_client(tmp_path, monkeypatch):
    """A chapter executes with ``grokbook.kernel``'s client, whose channels are the ones that
    poll in slices, through a cell like chapter 8's leaderboard widget (an output widget
    holding a large image), where the stock client could sleep through its reply (an hour, a
    cell's timeout); the executed copy has every cell's output."""
    from grokbook import kernel

    polls = []
    get_msg = kernel.SlicedPollChannel.get_msg

    async def counted(self, timeout=None):
        polls.append(self.socket.type)
        return await get_msg(self, timeout)

    monkeypatch.setattr(kernel.SlicedPollChannel, "get_msg", counted)
    widget = ("import ipywidgets as w\nfrom IPython.display import HTML, clear_output, display\n"
              "out = w.Output()\nwith out:\n    clear_output(wait=True)\n"
              "    display(HTML('<b>' + 'x' * 80000 + '</b>'))\nw.VBox([w.IntSlider(), out])")
    source = tmp_path / "99_widget.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(widget), nbformat.v4.new_code_cell("print('after')")]),
        source)
    out = chapters.execute(source, "ci", tmp_path / "executed.ipynb")
    executed = nbformat.read(out, as_version=4)
    import zmq

    assert {zmq.DEALER, zmq.SUB} <= set(polls)  # replies and output both polled in slices
    assert "application/vnd.jupyter.widget-view+json" in executed.cells[0].outputs[0]["data"]
    assert executed.cells[1].outputs[0]["text"] == "after\n"
