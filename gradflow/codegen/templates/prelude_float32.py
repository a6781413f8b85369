# Template: the float32 helpers: the same names, computed in float32 throughout.
#
# This file is not imported.  gradflow.codegen copies it into every generated module, before
# the cell's unit functions.
# A float32 kernel evaluating its gates in float64 would run at float64's vector width.
# _exp is Cephes' expf (Cody-Waite reduction, degree-6 polynomial), _tanh Cephes' tanhf
# below |x| = 0.625; within 2 units in the last place of the correctly rounded values.

@intrinsic
def _f32_from_bits(typingctx, bits):
    """The float32 whose IEEE 754 bit pattern is the low 32 bits of the integer `bits`."""
    if isinstance(bits, types.Integer):
        def codegen(context, builder, signature, args):
            word = builder.trunc(args[0], ir.IntType(32)) if bits.bitwidth > 32 else args[0]
            return builder.bitcast(word, context.get_value_type(types.float32))
        return types.float32(bits), codegen
    return None


@njit(inline="always", **JIT)
def _exp(x):
    v = np.float32(x)
    y = np.float32(89.0) if v > np.float32(89.0) else (np.float32(-104.0) if v < np.float32(-104.0) else v)
    y = y if y == y else np.float32(0.0)
    n = np.floor(y * np.float32(1.4426950408889634) + np.float32(0.5))
    r = (y - n * np.float32(0.693359375)) - n * np.float32(-2.12194440e-4)
    p = np.float32(1.9875691500e-4)
    p = p * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    p = p * (r * r) + r + np.float32(1.0)
    k = np.int64(n)
    k1 = k >> 1
    e = p * _f32_from_bits((k1 + 127) << 23) * _f32_from_bits((k - k1 + 127) << 23)
    return e if v == v else v


@njit(inline="always", **JIT)
def _sigmoid(x):
    e = _exp(-abs(x))
    s = np.float32(1.0) / (np.float32(1.0) + e)
    return s if x >= np.float32(0.0) else e * s


@njit(inline="always", **JIT)
def _tanh(x):
    v = np.float32(x)
    z = abs(v)
    big = np.float32(1.0) - np.float32(2.0) / (_exp(np.float32(2.0) * z) + np.float32(1.0))
    s = z * z
    small = ((((np.float32(-5.70498872745e-3) * s + np.float32(2.06390887954e-2)) * s
               - np.float32(5.37397155531e-2)) * s + np.float32(1.33314422036e-1)) * s
             - np.float32(3.33332819422e-1)) * s * z + z
    a = small if z < np.float32(0.625) else big
    a = -a if v < np.float32(0.0) else a
    return v if z == np.float32(0.0) else a


@njit(inline="always", **JIT)
def _relu(x):
    return x if x > np.float32(0.0) else (x if x != x else np.float32(0.0))


@njit(inline="always", **JIT)
def _step(x):
    return np.float32(1.0) if x > np.float32(0.0) else (x if x != x else np.float32(0.0))
