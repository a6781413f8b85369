# Template: the float64 helpers every generated module starts with.
#
# This file is not imported.  gradflow.codegen copies it into every generated module, before
# the cell's unit functions.
# Stable for every finite input (no overflow at |x| = 1000), NaN in, NaN out.  _exp, _sigmoid
# and _tanh call no library function and branch nowhere (both sides are computed, then
# selected), and they are inlined, so that LLVM vectorises the loops of the unit functions;
# they agree with math.exp and math.tanh to within 3 units in the last place.

@intrinsic
def _f64_from_bits(typingctx, bits):
    """The float64 whose IEEE 754 bit pattern is the int64 `bits`."""
    if isinstance(bits, types.Integer) and bits.bitwidth == 64:
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(types.float64))
        return types.float64(bits), codegen
    return None


@njit(inline="always", **JIT)
def _exp(x):
    # x = n log(2) + r with |r| <= log(2)/2 (Cody-Waite: log(2) in two parts, fdlibm's), exp(r)
    # by its Taylor polynomial of degree 13 (truncation error < 5e-18), and 2**n as two
    # factors so that overflow gives inf and subnormal results are exact.
    v = float(x)
    y = 710.0 if v > 710.0 else (-746.0 if v < -746.0 else v)
    y = y if y == y else 0.0
    n = math.floor(y * 1.4426950408889634 + 0.5)
    r = (y - n * 0.6931471803691238) - n * 1.9082149292705877e-10
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    k = np.int64(n)
    k1 = k >> 1
    e = p * _f64_from_bits((k1 + 1023) << 52) * _f64_from_bits((k - k1 + 1023) << 52)
    return e if v == v else v


@njit(inline="always", **JIT)
def _sigmoid(x):
    # 1 / (1 + exp(-x)) for x >= 0, exp(x) / (1 + exp(x)) below: exp never overflows
    e = _exp(-abs(x))
    s = 1.0 / (1.0 + e)
    return s if x >= 0.0 else e * s


@njit(inline="always", **JIT)
def _tanh(x):
    # |x| >= 0.625: 1 - 2 / (exp(2|x|) + 1), with the sign of x; below, where that form
    # cancels, Cephes' rational approximation x + x^3 P(x^2) / Q(x^2) (S. L. Moshier).
    v = float(x)
    z = abs(v)
    big = math.copysign(1.0 - 2.0 / (_exp(2.0 * z) + 1.0), v)
    s = v * v
    p = (-0.964399179425052238628 * s - 99.2877231001918586564) * s - 1614.68768441708447952
    q = ((s + 112.811678491632931402) * s + 2235.48839060100448583) * s + 4844.06305325125486048
    small = math.copysign(v + v * s * (p / q), v)
    return small if z < 0.625 else big


@njit(inline="always", **JIT)
def _relu(x):
    return x if x > 0.0 else (x if x != x else 0.0)


@njit(inline="always", **JIT)
def _step(x):
    return 1.0 if x > 0.0 else (x if x != x else 0.0)
