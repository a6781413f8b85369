# Template: log(sigmoid) and log(tanh'), in float64 in both dtypes' modules.
#
# This file is not imported.  gradflow.codegen copies it into every generated module, before
# the cell's unit functions.
# Path products in log space sum thousands of them.

@njit(**JIT)
def _log_sigmoid(x):
    # log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)), finite for every finite x
    return min(x, 0.0) - math.log1p(math.exp(-abs(x)))


@njit(**JIT)
def _log_dtanh(x):
    # log(1 - tanh(x)**2) = log(4) - 2|x| - 2 log1p(exp(-2|x|)), finite for every finite x
    a = abs(x)
    return 1.3862943611198906 - 2.0 * a - 2.0 * math.log1p(math.exp(-2.0 * a))
