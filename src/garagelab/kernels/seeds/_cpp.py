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

# a GCC vector type `vec` of VEC_BITS (a knob of the seed: its own TEMPLATE.replace sets it), its
# width W in floats, and unaligned loads and stores of it
VEC = r"""
typedef float vec __attribute__((vector_size(VEC_BITS / 8)));
constexpr int64_t W = VEC_BITS / 32;  // floats per vector
static inline vec load(const float* p) { vec v; __builtin_memcpy(&v, p, sizeof v); return v; }
static inline void store(float* p, vec v) { __builtin_memcpy(p, &v, sizeof v); }
"""

# the sum of a vec's lanes: in order (the row reductions), or by 4-float quarters first (the
# dot-product tiles, where it runs once per output)
HSUM = r"""
static inline float hsum(vec v) { float s = 0.0f; for (int i = 0; i < W; ++i) s += v[i]; return s; }
"""
HSUM4 = r"""
typedef float v4 __attribute__((vector_size(16)));
static inline float hsum(vec v) {  // add the 4-float quarters first: W / 4 vector adds, then 3 scalar ones
    v4 s = {};
    for (int q = 0; q < W / 4; ++q) {
        v4 part;
        __builtin_memcpy(&part, (const char*)&v + 16 * q, 16);
        s += part;
    }
    return (s[0] + s[2]) + (s[1] + s[3]);
}
"""

MARKERS = {
    marker: text.strip("\n") for marker, text in {"@EXP@": EXP, "@VEC@": VEC, "@HSUM@": HSUM, "@HSUM4@": HSUM4}.items()
}
