"""Copy variants: which wording of a message each recipient gets. Pure, without I/O.

Recipients are ranked by delivery id (the order the snapshot created them in) and dealt the
variants in turn, like cards: rank r gets variant r mod n. Any number of recipients is then
split evenly (counts differ by at most one), neighbours in the roster get different wordings,
and the answer is a function of the snapshot alone. It is stored on the links, so a retry, a
resend, the web version and the preview read it back instead of computing it again.
"""

from collections.abc import Sequence


def variant_of(rank: int, variant_count: int) -> int:
    """The variant (0: the base text) of the recipient at 0-based `rank`."""
    return rank % variant_count


def recipients_per_variant(recipients: int, variant_count: int) -> list[int]:
    """How many of `recipients` get each variant: the first `recipients mod n` get one more."""
    share, extra = divmod(recipients, variant_count)
    return [share + (1 if variant < extra else 0) for variant in range(variant_count)]


def variants_of_rank(rank: int, variant_counts: Sequence[int]) -> tuple[int, ...]:
    """The variant of every message (by their variant counts) for the recipient at `rank`."""
    return tuple(variant_of(rank, count) for count in variant_counts)
