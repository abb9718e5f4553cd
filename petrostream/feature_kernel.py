"""The window features of ``petrostream.features`` as one compiled pass (numba), for training and serving alike.

Same algorithm, same additions in the same order as the numpy reference (``features._window_features``):
block-aligned (van Herk / Gil-Werman) prefix and suffix aggregates, exact integer counts, then the
element-wise feature formulas written operation for operation as there. The numpy version makes ~100
passes over the rows with temporaries; this makes one loop per (segment, variable, window) and writes each
feature straight into the output, which is what lets the serving path keep up with the model.

Only transcendental functions (log10, asinh) may round differently from numpy's SIMD versions, in the last
bit of a float64 before the float32 cast. Training and serving both run this kernel, so a stream still
reproduces the batch result bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# feature kinds (rows of the column table built by features._kernel_table)
Z, STD_REL, RANGE_REL, TREND, FROZEN, CHANGED, VALUE, MISSING = range(8)
N_KINDS = 8


@njit(cache=True, nogil=True)
def _block_prefix_suffix(x, p0, B, lo, pre, suf):
    """Sums inside blocks of B rows aligned on instance positions that are multiples of B (the segment starts
    at position p0): pre[i] from i's block start (or the segment start) to i, suf[i] from i to its block end,
    for i >= lo (pre from lo's block start: the sums must start where the reference starts them)."""
    L = x.shape[0]
    ph = (p0 + lo) % B  # position inside the block, kept by counting (integer modulo per row is slow)
    i0 = max(0, lo - ph)
    ph = (p0 + i0) % B
    acc = 0.0
    for i in range(i0, L):
        acc = x[i] if (i == i0 or ph == 0) else acc + x[i]
        pre[i] = acc
        ph = 0 if ph == B - 1 else ph + 1
    ph = (p0 + L - 1) % B
    for i in range(L - 1, lo - 1, -1):
        acc = x[i] if (i == L - 1 or ph == B - 1) else acc + x[i]
        suf[i] = acc
        ph = B - 1 if ph == 0 else ph - 1


@njit(cache=True, nogil=True)
def _suffixes(x, neg, x0, x0sq, p0, B, lo, stats, suf_hi, suf_lo, suf_s, suf_q):
    """suf[i] for i >= lo: max of x, max of -x and (if stats) sums of x0, x0**2 from i to its block end."""
    L = x.shape[0]
    ph = (p0 + L - 1) % B
    hi = lo_ = s = q = 0.0
    for i in range(L - 1, lo - 1, -1):
        if i == L - 1 or ph == B - 1:
            hi, lo_ = x[i], neg[i]
            if stats:
                s, q = x0[i], x0sq[i]
        else:
            hi, lo_ = max(hi, x[i]), max(lo_, neg[i])
            if stats:
                s, q = s + x0[i], q + x0sq[i]
        suf_hi[i], suf_lo[i] = hi, lo_
        if stats:
            suf_s[i], suf_q[i] = s, q
        ph = B - 1 if ph == 0 else ph - 1


@njit(cache=True, nogil=True)
def _sum_at(pre, suf, i, p, ph, B):
    """Sum over the trailing window of B rows ending at segment row i (instance position p, p % B == ph)."""
    if p >= B and ph != B - 1:
        return pre[i] + suf[i - B + 1]
    return pre[i] + 0.0


@njit(cache=True, nogil=True)
def _clipped_ratio(ratio, n, lo, hi):
    """The argument of the log of a relative spread (fewer than 2 values: lo, whose log10 is LOG_REL_MIN exactly)."""
    if n < 2:
        return lo
    if math.isnan(ratio):
        ratio = 0.0
    elif ratio == math.inf:
        ratio = hi
    elif ratio == -math.inf:
        ratio = -1.7976931348623157e308
    return min(max(ratio, lo), hi)


@njit(cache=True, nogil=True)
def _prepare(v, r, x, neg, x0, x0sq, cnt):
    """Per-variable inputs of the aggregates: x and -x (-inf where missing) for max/min, x0 = x - ref and x0**2
    (0 where missing) for sums, cnt = running count of valid values (cnt[0] = 0)."""
    cnt[0] = 0
    for i in range(v.shape[0]):
        a = v[i]
        if math.isnan(a):
            x[i] = -math.inf
            neg[i] = -math.inf
            x0[i] = 0.0
            x0sq[i] = 0.0
            cnt[i + 1] = cnt[i]
        else:
            x[i] = a
            neg[i] = -a
            d = a - r
            x0[i] = d
            x0sq[i] = d * d
            cnt[i + 1] = cnt[i] + 1


@njit(cache=True, nogil=True)
def _value_and_missing(v, f0, o, k_value, k_missing, missing_valve, out):
    for i in range(f0, v.shape[0]):
        a = v[i]
        if k_value >= 0:
            out[k_value, o + i - f0] = missing_valve if math.isnan(a) else a
        if k_missing >= 0:
            out[k_missing, o + i - f0] = 1.0 if math.isnan(a) else 0.0


@njit(cache=True, nogil=True)
def _count(cnt, i, B):
    """Valid values among the B rows ending at segment row i (truncated at the segment start)."""
    return float(cnt[i + 1] - cnt[i + 1 - min(B, i + 1)])


@njit(cache=True, nogil=True)
def _one_window(v, r, p0, f0, o, B, ks, consts, inputs, scratch, out, aux):  # noqa: C901 - see below
    """The features of window B of one variable for the output rows f0.. of one segment.

    ks: output columns (z, std_rel, range_rel, trend, frozen, changed; -1 = not asked for; the transcendental
    three are aux columns). inputs: x, neg, x0, x0sq, cnt (see _prepare); scratch: six arrays of the segment's
    length. Prefix aggregates run along the row loop; suffixes and the half-window sums of the trend are
    stored, each only from the first row an output row reaches back to. One fused loop on purpose: moving
    the trend into a helper function made this kernel 2x slower (measured), so it stays inline.
    """
    k_z, k_sr, k_rr, k_tr, k_fr, k_ch = ks[0], ks[1], ks[2], ks[3], ks[4], ks[5]
    rel_floor, abs_floor, z_clip, rel_lo, rel_hi = consts[0], consts[1], consts[2], consts[3], consts[4]
    x, neg, x0, x0sq, cnt = inputs
    suf_hi, suf_lo, suf_s, suf_q, pre_h, suf_h = scratch
    stats = k_z >= 0 or k_sr >= 0 or k_rr >= 0 or k_tr >= 0
    L = v.shape[0]
    _suffixes(x, neg, x0, x0sq, p0, B, max(0, f0 - B + 1), stats, suf_hi, suf_lo, suf_s, suf_q)
    h = B // 2
    if k_tr >= 0:
        _block_prefix_suffix(x0, p0, h, max(0, f0 - 2 * h + 1), pre_h, suf_h)
    ph = (p0 + f0) % B  # p % B and p % h, kept by counting
    phh = (p0 + f0) % h
    i0 = max(0, f0 - ph)  # the prefix sums start at f0's block start (or the segment start)
    g = (p0 + i0) % B
    a_hi = a_lo = a_s = a_q = 0.0
    for i in range(i0, L):
        if i == i0 or g == 0:
            a_hi, a_lo, a_s, a_q = x[i], neg[i], x0[i], x0sq[i]
        else:
            a_hi, a_lo, a_s, a_q = max(a_hi, x[i]), max(a_lo, neg[i]), a_s + x0[i], a_q + x0sq[i]
        g = 0 if g == B - 1 else g + 1
        if i < f0:
            continue
        p = p0 + i
        col = o + i - f0
        if i > f0:
            ph = 0 if ph == B - 1 else ph + 1
            phh = 0 if phh == h - 1 else phh + 1
        n = _count(cnt, i, B)
        if p >= B and ph != B - 1:  # the window reaches into the previous block: add its suffix
            left = i - B + 1
            hi, lo, sm, q = max(a_hi, suf_hi[left]), -max(a_lo, suf_lo[left]), a_s + suf_s[left], a_q + suf_q[left]
        else:
            hi, lo, sm, q = max(a_hi, -math.inf), -max(a_lo, -math.inf), a_s + 0.0, a_q + 0.0
        const = hi == lo
        if k_ch >= 0:
            out[k_ch, col] = 1.0 if (n >= 2 and hi != lo) else 0.0
        if k_fr >= 0:
            out[k_fr, col] = 1.0 if (n >= max(2, B // 2) and const) else 0.0
        if not stats:
            continue
        inv_n = 1.0 / max(n, 1.0)
        mean_c = sm * inv_n
        level = max(abs(mean_c + r), abs_floor)
        std = 0.0 if const else math.sqrt(max(q * inv_n - mean_c * mean_c, 0.0))
        if k_z >= 0:
            if n < 2 or math.isnan(v[i]) or const:
                out[k_z, col] = 0.0
            else:
                out[k_z, col] = min(max((x0[i] - mean_c) / max(std, rel_floor * level), -z_clip), z_clip)
        if k_sr >= 0:
            aux[k_sr, col] = _clipped_ratio(std / level, n, rel_lo, rel_hi)
        if k_rr >= 0:
            aux[k_rr, col] = _clipped_ratio((hi - lo) / level, n, rel_lo, rel_hi)
        if k_tr >= 0:
            val = 0.0  # a half-window without values: the trend is 0 (asinh(0) = 0)
            if i >= h:
                n_new, n_old = _count(cnt, i, h), _count(cnt, i - h, h)
                if n_new > 0 and n_old > 0:
                    m_new = _sum_at(pre_h, suf_h, i, p, phh, h) / max(n_new, 1.0)
                    m_old = _sum_at(pre_h, suf_h, i - h, p - h, phh, h) / max(n_old, 1.0)
                    val = (m_new - m_old) / level
            aux[k_tr, col] = val


@njit(cache=True, nogil=True)
def window_features(xt, seg_len, pos0, out_from, ref, windows, table, consts, out, aux):
    """Fill ``out`` (F, m) float32 with the features of the output rows of every segment.

    The transcendental features go to ``aux`` (A, m) float64 instead, as the argument of their function
    (chosen so that the function gives the fixed value where there is one), so numpy applies log10 / asinh
    vectorised afterwards:
    a scalar libm call per value would cost more than everything else here.

    xt (V, n) float64 raw values (NaN = missing), segments consecutive in n; segment s spans seg_len[s] rows,
    its first row is at instance position pos0[s], and rows out_from[s].. of it are output (in order).
    ref (S, V): per-segment reference level; table (N_KINDS, W, V) int64: output column of each feature (aux
    column for STD_REL, RANGE_REL and TREND) or -1;
    consts: REL_FLOOR, ABS_FLOOR, Z_CLIP, 10**LOG_REL_MIN, 10**LOG_REL_MAX, MISSING_VALVE.
    """
    Lmax = 1
    for s in range(seg_len.shape[0]):
        Lmax = max(Lmax, seg_len[s])
    inputs = (np.empty(Lmax), np.empty(Lmax), np.empty(Lmax), np.empty(Lmax), np.empty(Lmax + 1, dtype=np.int64))
    scratch = (np.empty(Lmax), np.empty(Lmax), np.empty(Lmax), np.empty(Lmax), np.empty(Lmax), np.empty(Lmax))
    ks = np.empty(6, dtype=np.int64)
    start = 0
    o = 0
    for s in range(seg_len.shape[0]):
        L, p0, f0 = seg_len[s], pos0[s], out_from[s]
        for j in range(xt.shape[0]):
            v = xt[j, start : start + L]
            _prepare(v, ref[s, j], inputs[0], inputs[1], inputs[2], inputs[3], inputs[4])
            _value_and_missing(v, f0, o, table[VALUE, 0, j], table[MISSING, 0, j], consts[5], out)
            for wi in range(windows.shape[0]):
                for kind in range(6):  # Z .. CHANGED
                    ks[kind] = table[kind, wi, j]
                if ks.max() >= 0:
                    _one_window(v, ref[s, j], p0, f0, o, windows[wi], ks, consts, inputs, scratch, out, aux)
        start += L
        o += L - f0
