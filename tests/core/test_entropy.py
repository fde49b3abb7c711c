import os

from app.core.entropy import EntropyPool


def test_takes_never_repeat_bytes_across_refills() -> None:
    pool = EntropyPool(block_bytes=64)
    tokens = [pool.take(12) for _ in range(100)]  # many refills of a 64-byte block
    assert all(len(token) == 12 for token in tokens)
    assert len(set(tokens)) == len(tokens)
    assert len(pool.take(100)) == 100  # larger than a block


def test_a_forked_child_never_hands_out_its_parents_bytes() -> None:
    pool = EntropyPool()
    pool.take(8)  # a block is in hand
    os.register_at_fork(after_in_child=pool.forget)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.write(write, pool.take(16))
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 16) != pool.take(16)
