"""C++ the seed kernels share, written into each at its marker by `seed_for` (a seed is one
self-contained program in the sandbox: it cannot include a file of ours)."""

# e^x that gcc vectorises: std::exp stays a scalar libm call without -ffast-math
EXP = r"""
// cephes expf: Cody-Waite reduction, degree-6 polynomial, 2^n built in the exponent bits (~1 ulp)
static inline float exp_(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    const float t = x * 1.44269504088896341f + 12582912.0f;  // adding 1.5 * 2^23 rounds to an integer
    const float n = t - 12582912.0f;
    const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits;
    std::memcpy(&bits, &t, 4);
    bits = (bits - 0x4B400000 + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, 4);
    return p * scale;
}
"""

# unaligned loads and stores of a GCC vector type `vec` (the seed defines it for its width)
LOAD = r"""
static inline vec load(const float* p) { vec v; __builtin_memcpy(&v, p, sizeof v); return v; }
static inline void store(float* p, vec v) { __builtin_memcpy(p, &v, sizeof v); }
"""

MARKERS = {"@EXP@": EXP.strip("\n"), "@LOAD@": LOAD.strip("\n")}
