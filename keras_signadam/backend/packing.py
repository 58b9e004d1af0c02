"""The arithmetic of the majority vote's packing, for every backend.

A replica's ternary signal s in {-1, 0, +1} travels as the code s + 1, in a
bit field of a 32-bit word: a field of b bits holds values below 2**b, and
a word holds 32 // b fields. Two collectives can carry the codes:

- ``"all_gather"``: 2-bit fields (codes 0, 1, 2; 16 per word); each
  replica receives every replica's words.
- ``"all_reduce"``: fields wide enough for the sum of R codes (0 .. 2R),
  so that the integer sum of R words holds the per-component sums of R
  codes without carries.

Fields are 2, 4, 8, 16 or 32 bits wide (the smallest power of two that
holds the values), not base-(2R + 1) digits or 5-bit fields, because XLA
packs and unpacks power-of-two fields at memory speed. Measured on two CPU
cores for 4.35M components: base-3 digits (1.6 bits per component against
2) took 16 ms to unpack against 7 ms for 2-bit fields, and 5-bit fields at
8 replicas made the voting step 1.35x the float32 step against 0.87x with
8-bit fields.

The functions here say how many bits a component costs and how many bytes
a replica sends under the ring algorithms; the TensorFlow packing
(`backend/tensorflow/majority_vote.py`) packs with the same
`fields_per_word`, and the documentation quotes `bits_per_component`.
"""

WORD_BITS = 32


def radix_for(collective, replicas):
    """How many values a field must hold: the ternary codes for the
    all-gather, sums of `replicas` of them for the all-reduce."""
    return 3 if collective == "all_gather" else 2 * replicas + 1


def field_bits(radix):
    """The narrowest power-of-two field (at least 2 bits) that holds the
    values 0 .. radix - 1."""
    bits = 2
    while (1 << bits) < radix:
        bits *= 2
    return bits


def fields_per_word(radix):
    """How many fields of `field_bits(radix)` bits a 32-bit word holds."""
    return WORD_BITS // field_bits(radix)


def packed_words(collective, components, replicas):
    per_word = fields_per_word(radix_for(collective, replicas))
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
    return WORD_BITS / fields_per_word(radix_for(collective, replicas))


def fewer_bytes(replicas, components=1 << 20):
    """How many times fewer bytes a replica sends with the vote than with
    the float32 all-reduce, under the ring algorithms."""
    return (ring_bytes_sent("float32_all_reduce", components, replicas)
            / ring_bytes_sent(collective_for(replicas, components),
                              components, replicas))


def bits_table(replica_counts=(2, 4, 8, 16, 64, 128, 1024, 32768)):
    """`bits_per_component` as text, for the documentation."""
    return ", ".join(f"{bits_per_component(r):.3g} at {r}"
                     for r in replica_counts)
