import multiprocessing as mp
import time

import torch

from l2l import cache


def _build_slowly(root, counter):
    def build():
        with open(counter, "a") as f:
            f.write("built\n")
        time.sleep(1.0)  # long enough that the other process arrives while we build
        return {"w": torch.arange(4.0)}, {"note": "x"}

    state, hit = cache.get_or_build(root, "thing", {"k": 1}, build)
    assert torch.equal(state["w"], torch.arange(4.0))


def test_parallel_processes_build_an_entry_once(tmp_path):
    counter = tmp_path / "count.txt"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_build_slowly, args=(tmp_path / "c", counter)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert counter.read_text().count("built") == 1


def test_second_call_is_a_hit_and_a_corrupt_entry_is_rebuilt(tmp_path):
    calls = []

    def build():
        calls.append(1)
        return {"w": torch.ones(3)}, {}

    _, first = cache.get_or_build(tmp_path, "m", {"a": 1}, build)
    _, second = cache.get_or_build(tmp_path, "m", {"a": 1}, build)
    assert (first.hit, second.hit, len(calls)) == (False, True, 1)
    assert second.meta["config"] == {"a": 1}
    weights = second.path / cache.WEIGHTS
    weights.write_bytes(weights.read_bytes()[:-7] + b"garbage")
    state, third = cache.get_or_build(tmp_path, "m", {"a": 1}, build)
    assert (third.hit, len(calls)) == (False, 2) and torch.equal(state["w"], torch.ones(3))


def test_half_written_entries_are_never_read(tmp_path):
    # A crash mid-write leaves only a temporary directory: the key is still missing.
    (tmp_path / "m").mkdir()
    key = cache.content_hash({"a": 2})
    (tmp_path / "m" / f".{key}.crash").mkdir()
    state, hit = cache.get_or_build(tmp_path, "m", {"a": 2}, lambda: ({"w": torch.zeros(1)}, {}))
    assert not hit.hit and (tmp_path / "m" / key / cache.META).exists()


def test_key_order_does_not_change_the_key():
    assert cache.content_hash({"a": 1, "b": [1, 2]}) == cache.content_hash({"b": [1, 2], "a": 1})
