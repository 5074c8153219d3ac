"""Plug-in (maximum-likelihood) entropies of discrete symbols, and fast ids for rows.

A layer's discretised activations are one symbol per input: the row of its bin
indices. `stacked_row_keys` numbers the distinct rows of N stacked networks at once
([N, n, units] codes) without `np.unique(axis=0)` (which is slow): each row of integer
codes becomes one mixed-radix number (one radix per network where it fits, ranks where
no one number does), and `stacked_plugin_mi_bits` gives their plug-in MI from counts,
with no loop over the networks. `row_ids` numbers the distinct rows of any 2-D array
by their raw bytes (`np.void`, `byte_keys`).
"""

from __future__ import annotations

import functools

import numpy as np

from trainer.bit_counts import true_counts

EXACT_FLOAT_INTEGERS = 2**53


def row_ids(rows: np.ndarray) -> np.ndarray:
    """Ids 0..K-1 of the K distinct rows of any 2-D array: exactly equal rows get equal ids."""
    return np.unique(byte_keys(rows), return_inverse=True)[1].reshape(-1)


def byte_keys(rows: np.ndarray) -> np.ndarray:
    """Each row as one np.void scalar (its raw bytes); float -0.0 is folded into +0.0 first."""
    if rows.dtype.kind == "f":
        rows = rows + 0.0  # -0.0 + 0.0 == +0.0, so both zeros get the same bytes
    rows = np.ascontiguousarray(rows)
    return rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).reshape(-1)


def entropy_bits(counts: np.ndarray) -> float:
    """Plug-in entropy in bits of one count vector (see `row_entropies_bits`)."""
    return float(row_entropies_bits(np.asarray(counts)[None])[0])


def row_entropies_bits(counts: np.ndarray) -> np.ndarray:
    """Plug-in entropy H = -sum_i p_i log2 p_i, p_i = c_i / N, of each row of counts [R, m]
    (zeros allowed), computed as log2 N - sum_i c_i log2 c_i / N, clipped at 0.

    The sum runs over count values, not symbols: sum_v mult_v * v log2 v with mult_v the number
    of symbols seen v times (v = 0..m), one fixed-order sum of m + 1 terms per row. So a row's
    entropy is a function of its multiset of counts and its width alone, bit for bit: how the
    symbols were numbered, and which other rows share the array, do not change a single bit.
    """
    counts = np.asarray(counts, dtype=np.int64)
    rows, width = counts.shape
    v_log_v = count_terms(max(width, int(counts.max(initial=0))))    # counts past the width: up to the largest
    span = len(v_log_v)
    multiplicities = np.bincount((counts + span * np.arange(rows)[:, None]).ravel(),
                                 minlength=rows * span).reshape(rows, span)
    return entropies_of_multiplicities(multiplicities, v_log_v, counts.sum(axis=1).astype(np.float64))


def sorted_row_entropies_bits(sorted_rows: np.ndarray) -> np.ndarray:
    """`row_entropies_bits` of the counts of equal values in each row of a row-wise sorted [R, m]
    array (each row's symbols), bit for bit, from its runs alone: the dense [R, m] counts (a run's
    length at its first position, 0 elsewhere) are never built. A run's length is at most m, so the
    count values are 0..m; the zeros number m minus the row's runs, and every row's total is m."""
    rows, width = sorted_rows.shape
    # True where a value repeats the one before it in its row: a run of length L has L - 1 of them. The
    # first column is False (a row's first value starts a run), so repeats never join across rows.
    repeats = np.empty(sorted_rows.shape, bool)
    repeats[:, :1] = False
    np.equal(sorted_rows[:, 1:], sorted_rows[:, :-1], out=repeats[:, 1:])
    runs = width - true_counts(repeats)
    # A row of distinct values (a wide layer's, as a rule) has `width` runs of length 1: its sum of
    # mult_v * v log2 v is width * (1 log2 1) = 0.0 exactly, so its entropy is log2(width) - 0.0 / width,
    # log2(width) itself, bit for bit (0 for rows of no values). Only the other rows' runs are counted.
    entropies = np.log2(np.full(rows, float(width))) if width else np.zeros(rows)
    repeated = np.flatnonzero(runs < width)
    if len(repeated):
        entropies[repeated] = entropies_of_multiplicities(run_multiplicities(repeats, runs, repeated),
                                                          count_terms(width), np.full(len(repeated), float(width)))
    return entropies


def run_multiplicities(repeats: np.ndarray, runs: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """How many runs of each length 1..m the rows `chosen` of a row-wise sorted [R, m] array have
    ([len(chosen), m + 1]; column 0 m minus the row's runs, as `entropies_of_width` sets it), from
    `repeats` (True where a value equals the one before it in its row, never in the first column) and
    each row's number of runs [R]. Found from the run starts (one pass over each start's position), or,
    where the repeats are fewer than a quarter of the starts, from the repeats (about four passes over
    each repeat's position; measured on the notebook cohort's layers): nearly distinct rows (a wide
    layer's) have few repeats."""
    chosen_runs = runs[chosen]
    total_runs = int(chosen_runs.sum())
    if 4 * (len(chosen) * repeats.shape[1] - total_runs) >= total_runs:
        return multiplicities_from_starts(~repeats[chosen], chosen_runs)
    return multiplicities_from_repeats(repeats, chosen_runs, chosen)


def multiplicities_from_starts(starts: np.ndarray, runs: np.ndarray) -> np.ndarray:
    """`run_multiplicities` of every row of `starts` [R, m] (True at each run's first position, always in
    the first column) with their numbers of runs [R]."""
    rows, width = starts.shape
    span = width + 1
    lengths = np.diff(np.flatnonzero(starts), append=starts.size)
    # Row r's runs are counted at r * span + length: the row of each run from each row's number of runs
    # (runs come row by row), a repeat instead of a division of every run's position by the width.
    lengths += np.repeat(np.arange(0, rows * span, span), runs)
    multiplicities = np.bincount(lengths, minlength=rows * span).reshape(rows, span)
    multiplicities[:, 0] = width - runs
    return multiplicities


def multiplicities_from_repeats(repeats: np.ndarray, runs: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """`run_multiplicities` of the rows `chosen` of `repeats` [R, m] (every row with a repeat among them;
    `runs` [len(chosen)] theirs). Consecutive repeated positions are one run's (a row's first position
    never is one, so they never span two rows), L - 1 of them for a run of length L; a row's other
    runs have length 1."""
    width = repeats.shape[1]
    span = width + 1
    positions = np.flatnonzero(repeats)
    first = np.ones(len(positions), bool)
    np.not_equal(positions[1:], positions[:-1] + 1, out=first[1:])
    run_starts = np.flatnonzero(first)                          # each run of length >= 2 at its first repeat
    lengths = np.diff(run_starts, append=len(positions)) + 1
    row = np.searchsorted(chosen, positions[run_starts] // width)
    multiplicities = np.bincount(row * span + lengths, minlength=len(chosen) * span).reshape(len(chosen), span)
    multiplicities[:, 1] = runs - np.bincount(row, minlength=len(chosen))
    multiplicities[:, 0] = width - runs
    return multiplicities


def counted_entropies_bits(counts: np.ndarray, width: int) -> np.ndarray:
    """`sorted_row_entropies_bits` of rows of `width` symbols each, bit for bit, from each row's dense
    counts [R, symbols] (every row sums to `width`; unseen symbols count 0): the same multiplicities of
    the count values 1..width, so the same entropies."""
    span = width + 1
    return entropies_of_width(np.bincount((counts + span * np.arange(len(counts))[:, None]).ravel(),
                                          minlength=len(counts) * span).reshape(len(counts), span), width)


def entropies_of_width(multiplicities: np.ndarray, width: int) -> np.ndarray:
    """The entropies of rows of `width` symbols from their multiplicities [R, width + 1] of the count
    values 1..width; column 0 is set to width minus the number of distinct symbols (as the runs of a
    sorted row give it: the zero terms add nothing, but the arrays are the same)."""
    multiplicities[:, 0] = width - multiplicities[:, 1:].sum(axis=1)
    return entropies_of_multiplicities(multiplicities, count_terms(width), np.full(len(multiplicities), float(width)))


def entropies_of_multiplicities(multiplicities: np.ndarray, v_log_v: np.ndarray, total: np.ndarray) -> np.ndarray:
    """log2 N - sum_v mult_v * v log2 v / N per row (multiplicities [R, m + 1], total N [R]), 0 where N = 0."""
    weighted = (multiplicities * v_log_v).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = np.log2(total) - weighted / total
    return np.maximum(np.where(total > 0, entropy, 0.0), 0.0)


@functools.lru_cache(maxsize=64)
def counts_entropy_bits(counts: tuple[int, ...]) -> float:
    """`entropy_bits` of these counts, kept: a run's class counts per split come back every epoch."""
    return entropy_bits(np.array(counts))


@functools.lru_cache(maxsize=64)
def count_terms(largest: int) -> np.ndarray:
    """v log2 v for v = 0..largest (0 log 0 = 0), read-only: the same few widths come back every epoch."""
    values = np.arange(largest + 1, dtype=np.float64)
    terms = values * np.log2(np.maximum(values, 1.0))
    terms.flags.writeable = False
    return terms


def stacked_row_keys(codes: np.ndarray, n_classes: int) -> np.ndarray:
    """Per network, one int64 key per row of its integer-valued codes ([N, n, units] -> [N, n]):
    exactly equal rows of one network get equal keys, and key * n_classes + class fits in int64.

    One pass for all networks, no loop over them. Key of a row: with one radix for all of a
    network's units where that fits (`uniform_radix_keys`), else the mixed-radix number
    sum_c (code_c - min_c) * prod_{c' > c} span_c' per network, exact
    in float64 while every network's product of spans is below 2^53 (a float64 product of
    integers rounds monotonically, so the test on it is exact too). Otherwise the same number
    built a unit at a time in int64, with ranks keeping it in range (`ranked_row_keys`).
    """
    n_networks, n, _ = codes.shape
    if n == 0:
        return np.zeros((n_networks, 0), np.int64)
    keys = uniform_radix_keys(codes, n_classes)
    if keys is not None:
        return keys
    columns = np.array(np.swapaxes(codes, 1, 2), dtype=np.float64, order="C")     # [N, units, n]
    columns -= columns.min(axis=2, keepdims=True)
    spans = columns.max(axis=2) + 1                                                  # [N, units]
    if np.all(np.prod(spans, axis=1) * n_classes < EXACT_FLOAT_INTEGERS):
        strides = np.concatenate([np.cumprod(spans[:, :0:-1], axis=1)[:, ::-1], np.ones((n_networks, 1))], axis=1)
        return np.matmul(strides[:, None, :], columns)[:, 0, :].astype(np.int64)    # exact integers
    return ranked_row_keys(columns, spans, n_classes)


def ranked_row_keys(columns: np.ndarray, spans: np.ndarray, n_classes: int) -> np.ndarray:
    """`stacked_row_keys` of rows too wide for one float64 number: `columns` [N, units, n], each
    network's codes shifted to start at 0, `spans` [N, units] (float64). The mixed-radix key is built
    a unit at a time in int64, key * span_c + code_c; before a unit would take a network's key past
    2^63 / n_classes, the keys so far become their ranks among the network's distinct keys
    (`row_ranks`: below n, equal exactly where the keys were), and a unit wider than that (or past
    float64's exact integers) becomes its ranks too. The keys returned are ranks, below n.
    (Each row as np.void bytes through np.unique, as before, took several times as long: its sort
    compares the rows with memcmp, one pair at a time.)"""
    limit = 2**63 // n_classes

    def too_wide(key_spans: np.ndarray, unit_spans: np.ndarray) -> bool:
        return any(int(k) * int(u) > limit for k, u in zip(key_spans.tolist(), unit_spans.tolist()))

    def unit(c: int) -> tuple[np.ndarray, np.ndarray]:
        if spans[:, c].max() >= EXACT_FLOAT_INTEGERS:     # its codes are not all exact integers in int64
            return row_ranks(columns[:, c])
        return columns[:, c].astype(np.int64), spans[:, c].astype(np.int64)

    keys, key_spans = unit(0)
    for c in range(1, columns.shape[1]):
        codes, unit_spans = unit(c)
        if too_wide(key_spans, unit_spans):
            keys, key_spans = row_ranks(keys)
            if too_wide(key_spans, unit_spans):
                codes, unit_spans = row_ranks(codes)
        keys = keys * unit_spans[:, None] + codes
        key_spans = key_spans * unit_spans
    return row_ranks(keys)[0]


def row_ranks(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each value's rank among the distinct values of its row (values [N, n], n > 0 -> int64 [N, n],
    0..K-1 in increasing order of value), and each row's K [N]."""
    order = np.argsort(values, axis=1)
    ordered = np.take_along_axis(values, order, axis=1)
    new = np.empty(values.shape, bool)
    new[:, 0] = False
    np.not_equal(ordered[:, 1:], ordered[:, :-1], out=new[:, 1:])
    ranks_in_order = np.cumsum(new, axis=1)
    ranks = np.empty_like(ranks_in_order)
    np.put_along_axis(ranks, order, ranks_in_order, axis=1)
    return ranks, ranks_in_order[:, -1] + 1


def uniform_radix_keys(codes: np.ndarray, n_classes: int) -> np.ndarray | None:
    """`stacked_row_keys` with one radix for all of a network's units, or None where it does not fit.

    Key of a row: sum_c (code_c - low) * span^(units - 1 - c), with low and high the network's
    smallest and largest code over all its units and span = high - low + 1: a mixed-radix number,
    each digit below span, so exactly equal rows, and only they, get equal keys.
    Used when span^units * n_classes < 2^53 for every network (tested in Python's exact integers):
    every partial sum is then an integer below 2^53, exact in float64 whatever order the matrix
    product adds in. The network's min and max are reductions over contiguous memory, and the
    codes keep their [N, n, units] layout, where per-unit spans need a transposed copy first.
    Wider code spaces (or many units) return None: the per-unit spans may still fit.
    """
    n_networks, _, units = codes.shape
    flat = codes.reshape(n_networks, -1)
    low, high = flat.min(axis=1).astype(np.float64), flat.max(axis=1).astype(np.float64)
    spans = (high - low + 1).tolist()
    if not all(int(span) ** units * n_classes < EXACT_FLOAT_INTEGERS for span in spans):
        return None
    digits = codes.astype(np.float64)       # then shifted in place: a casting subtraction is a slower pass
    digits.reshape(n_networks, -1)[...] -= low[:, None]                              # [N, n, units], 0..span-1
    radix = np.ones((n_networks, units))
    radix[:, 1:] = np.array(spans)[:, None]
    powers = np.ascontiguousarray(np.cumprod(radix, axis=1)[:, ::-1, None])     # span^(units-1)..span, 1: exact
    # (contiguous: matmul runs a strided operand through its slow non-BLAS loop)
    return np.matmul(digits, powers)[:, :, 0].astype(np.int64)


def stacked_plugin_mi_bits(codes: np.ndarray, classes: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(I(X;T), I(Y;T)) in bits [N] for N networks' deterministic discrete T of n distinct inputs X.

    `codes`: [N, n, units] integer-valued bin codes (a symbol is the row of a network's codes
    for one input); Y as class ids 0..n_classes-1 [n], all inputs equally likely.
    I(X;T) = H(T) - H(T|X) = H(T), since H(T|X) = 0 for a deterministic map;
    I(Y;T) = H(T) - sum_y p(y) H(T|Y=y) = H(T) + H(Y) - H(T,Y) (the same plug-in
    quantity). One sort per network of key * n_classes + class gives both: its runs are the
    (symbol, class) counts, and divided by n_classes, the symbol counts (when there are no more
    (symbol, class) pairs than rows, one bincount gives the same counts). Every network's numbers
    are those it gets alone, bit for bit (`row_entropies_bits`).
    """
    joint = stacked_row_keys(codes, n_classes) * n_classes + classes
    n_networks, n = joint.shape
    h_y = counts_entropy_bits(tuple(np.bincount(classes, minlength=n_classes).tolist()))
    largest = int(joint.max(initial=-1))
    symbols = largest // n_classes + 1      # keys are >= 0: each network's are 0..symbols-1
    if 0 < symbols * n_classes <= n:
        # Few (symbol, class) pairs (a layer of two or three units): counting them costs less than
        # sorting the rows, and gives the same entropies (counted_entropies_bits).
        counts = np.bincount((joint + symbols * n_classes * np.arange(n_networks)[:, None]).ravel(),
                             minlength=n_networks * symbols * n_classes).reshape(n_networks, symbols, n_classes)
        h_t = counted_entropies_bits(counts.sum(axis=2), n)
        return h_t, h_t + h_y - counted_entropies_bits(counts.reshape(n_networks, -1), n)
    # Keys and classes are >= 0: in fewer bits the same values in the same order, sorted faster. Below
    # 2^16 numpy's stable sort of 16-bit integers is a radix sort, much faster than the int32 quicksort
    # (a cohort's 3-unit layers); below 2^31, int32 sorts faster than int64 (bench/RESULTS.md).
    if largest < 2**16:
        joint = np.sort(joint.astype(np.uint16), axis=1, kind="stable")
    else:
        if largest < 2**31:
            joint = joint.astype(np.int32)
        joint.sort(axis=1)
    h_t = sorted_row_entropies_bits(joint // n_classes)
    h_ty = sorted_row_entropies_bits(joint)
    return h_t, h_t + h_y - h_ty
