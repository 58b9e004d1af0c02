"""The arithmetic of the majority vote's packing, for every backend.

A replica's ternary signal s in {-1, 0, +1} travels as the code s + 1,
packed into 32-bit words as base-`radix` digits (a word holds k digits when
radix**k <= 2**32). Two collectives can carry the codes:

- ``"all_gather"``: base 3; each replica receives every replica's words.
- ``"all_reduce"``: base 2R + 1 for R replicas, so that the integer sum of
  R words holds the per-component sums of R codes without carries.

The functions here say how many bits a component costs and how many bytes
a replica sends under the ring algorithms; the TensorFlow packing
(`backend/tensorflow/majority_vote.py`) packs with the same
`digits_per_word`, and the documentation quotes `bits_per_component`.
"""

WORD = 2**32


def digits_per_word(radix):
    """The most base-`radix` digits a 32-bit word holds."""
    k = 1
    while radix ** (k + 1) <= WORD:
        k += 1
    return k


def radix_for(collective, replicas):
    """Base of the packed codes: ternary codes for the all-gather, sums of
    `replicas` of them for the all-reduce."""
    return 3 if collective == "all_gather" else 2 * replicas + 1


def packed_words(collective, components, replicas):
    per_word = digits_per_word(radix_for(collective, replicas))
    return -(-components // per_word)


def ring_bytes_sent(collective, components, replicas):
    """Bytes one replica sends per step under the ring algorithms (an
    all-gather of n bytes per replica sends (R - 1) n; an all-reduce of n
    bytes sends 2 (R - 1) / R n)."""
    if collective == "float32_all_reduce":
        return 2 * (replicas - 1) / replicas * 4 * components
    words = packed_words(collective, components, replicas)
    if collective == "all_gather":
        return (replicas - 1) * 4 * words
    return 2 * (replicas - 1) / replicas * 4 * words


def collective_for(replicas, components=1 << 20):
    """The collective that sends fewer bytes (the all-reduce on a tie: it
    receives fewer)."""
    gather = ring_bytes_sent("all_gather", components, replicas)
    reduce = ring_bytes_sent("all_reduce", components, replicas)
    return "all_gather" if gather < reduce else "all_reduce"


def bits_per_component(replicas):
    """Bits one component occupies in the words of the collective chosen
    for `replicas` replicas."""
    collective = collective_for(replicas)
    return 32 / digits_per_word(radix_for(collective, replicas))


def bits_table(replica_counts=(2, 4, 8, 16, 64, 128, 1024, 32768)):
    """`bits_per_component` as text, for the documentation."""
    return ", ".join(f"{bits_per_component(r):.3g} at {r}"
                     for r in replica_counts)
