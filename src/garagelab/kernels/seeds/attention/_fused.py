import torch
import torch.nn as nn

from garagelab.kernels.backends.cpp import load

QUERY_ROWS = 32  # tune: 32, 64, 128
KEY_BLOCK = 16  # tune: 8, 16, 32, 64, 128, 256
LANES = 16  # tune: 8, 16

TEMPLATE = r"""
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

// A register of LANES floats (gcc's vector extension: explicit register tiles, portable across
// instruction sets). Every step runs across query rows, LANES at a time: the rows' scores,
// running maxima and sums sit side by side, so no step needs a horizontal reduction, and q is
// the only input copied (transposed, once per pass); k and v are read where they lie.
typedef float vec __attribute__((vector_size(LANES * 4)));
static inline vec load(const float* p) { vec x; std::memcpy(&x, p, sizeof x); return x; }
static inline void store(float* p, vec x) { std::memcpy(p, &x, sizeof x); }

// e^x (Cephes' expf, within 2 ulp): std::exp is a scalar call without -ffast-math, this vectorises.
// Clamped to [-87, 88], where 2^n stays a normal float; below -87 e^x < 2e-38 counts as zero.
static inline float fast_exp(float x) {
    x = std::min(std::max(x, -87.0f), 88.0f);
    const float t = x * 1.44269504f + 12582912.0f;  // adding 1.5 * 2^23 rounds to an integer
    const float n = t - 12582912.0f;
    const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return (p * r * r + r + 1.0f) * scale;
}

// tanh from fast_exp, so that score modifications using it vectorise too
static inline float fast_tanh(float x) { return 1.0f - 2.0f / (fast_exp(2.0f * x) + 1.0f); }

// The keys query row i of n attends: [first, last). Keys outside are never read.
static inline void key_range(int64_t i, int64_t n, int64_t& first, int64_t& last) {
    @RANGE@
}

// out^T[d + t] = out^T[d + t] * rescale + sum_c p[c] v[c][d + t], for T columns of v at once
template <int T>
static inline void accumulate(float* ot, const float* s, const float* v, const float* rescale,
                              int64_t keys, int64_t dim, int64_t d) {
    for (int64_t r = 0; r < QUERY_ROWS; r += 2 * LANES) {
        float* o = ot + d * QUERY_ROWS + r;
        vec acc[T][2];
        for (int t = 0; t < T; ++t) {
            acc[t][0] = load(o + t * QUERY_ROWS) * load(rescale + r);
            acc[t][1] = load(o + t * QUERY_ROWS + LANES) * load(rescale + r + LANES);
        }
        for (int64_t c = 0; c < keys; ++c) {
            const vec p0 = load(s + c * QUERY_ROWS + r), p1 = load(s + c * QUERY_ROWS + r + LANES);
            for (int t = 0; t < T; ++t) {
                acc[t][0] += v[c * dim + d + t] * p0;
                acc[t][1] += v[c * dim + d + t] * p1;
            }
        }
        for (int t = 0; t < T; ++t) {
            store(o + t * QUERY_ROWS, acc[t][0]);
            store(o + t * QUERY_ROWS + LANES, acc[t][1]);
        }
    }
}

// FlashAttention on a CPU: QUERY_ROWS query rows pass over the keys in their ranges, KEY_BLOCK
// keys at a time, with an online softmax (a running max and sum per row), so the scores never
// leave the cache.
extern "C" void attention(const float* q, const float* k, const float* v, float* out,
                          int64_t batch, int64_t heads, int64_t n, int64_t dim) {
    const float scale = 1.0f / std::sqrt(static_cast<float>(dim));
    const int64_t blocks = (n + QUERY_ROWS - 1) / QUERY_ROWS;
    #pragma omp parallel
    {
        std::vector<float> qt(dim * QUERY_ROWS), ot(dim * QUERY_ROWS);  // transposed: row-minor
        alignas(64) float s[KEY_BLOCK + 8][QUERY_ROWS];  // scores, then probabilities
        alignas(64) float top[QUERY_ROWS], m[QUERY_ROWS], total[QUERY_ROWS], rescale[QUERY_ROWS];
        int64_t first[QUERY_ROWS], last[QUERY_ROWS];
        // masked passes differ in length: dynamic scheduling balances the threads
        #pragma omp for schedule(dynamic)
        for (int64_t task = 0; task < batch * heads * blocks; ++task) {
            const int64_t bh = task / blocks, h = bh % heads, H = heads;
            const int64_t i0 = task % blocks * QUERY_ROWS, rows = std::min<int64_t>(QUERY_ROWS, n - i0);
            const float* K = k + bh * n * dim;
            const float* V = v + bh * n * dim;
            @HEAD@
            int64_t lo = n, hi = 0;
            for (int64_t r = 0; r < QUERY_ROWS; ++r) {
                first[r] = last[r] = 0;  // padding rows past the end attend nothing
                if (r < rows) key_range(i0 + r, n, first[r], last[r]);
                if (first[r] < last[r]) lo = std::min(lo, first[r]), hi = std::max(hi, last[r]);
                top[r] = -INFINITY;
                total[r] = 0.0f;
                for (int64_t d = 0; d < dim; ++d)
                    qt[d * QUERY_ROWS + r] = r < rows ? q[(bh * n + i0 + r) * dim + d] * scale : 0.0f;
            }
            std::fill(ot.begin(), ot.end(), 0.0f);
            for (int64_t j0 = lo; j0 < hi; j0 += KEY_BLOCK) {
                const int64_t keys = std::min<int64_t>(KEY_BLOCK, hi - j0);
                // scores = q k^T, 8 keys by 2 x LANES rows in registers (past the range: its last key again)
                for (int64_t c = 0; c < keys; c += 8) {
                    const float* kr[8];
                    for (int t = 0; t < 8; ++t) kr[t] = K + std::min(j0 + c + t, hi - 1) * dim;
                    for (int64_t r = 0; r < QUERY_ROWS; r += 2 * LANES) {
                        vec acc[8][2] = {};
                        for (int64_t d = 0; d < dim; ++d) {
                            const vec x0 = load(&qt[d * QUERY_ROWS + r]), x1 = load(&qt[d * QUERY_ROWS + r + LANES]);
                            for (int t = 0; t < 8; ++t) {
                                acc[t][0] += kr[t][d] * x0;
                                acc[t][1] += kr[t][d] * x1;
                            }
                        }
                        for (int t = 0; t < 8; ++t) {
                            store(&s[c + t][r], acc[t][0]);
                            store(&s[c + t][r + LANES], acc[t][1]);
                        }
                    }
                }
                // the score modification and the online softmax; -inf (then p = 0) off a row's range
                std::copy(top, top + QUERY_ROWS, m);
                for (int64_t c = 0; c < keys; ++c) {
                    const int64_t j = j0 + c;
                    #pragma omp simd
                    for (int64_t r = 0; r < QUERY_ROWS; ++r) {
                        const int64_t i = i0 + r;
                        const float x = s[c][r];
                        const float y = j >= first[r] && j < last[r] ? @SCORE@ : -INFINITY;
                        s[c][r] = y;
                        m[r] = std::max(m[r], y);
                    }
                }
                float sum[QUERY_ROWS] = {};
                for (int64_t c = 0; c < keys; ++c) {
                    #pragma omp simd
                    for (int64_t r = 0; r < QUERY_ROWS; ++r) {
                        const float p = s[c][r] == -INFINITY ? 0.0f : fast_exp(s[c][r] - m[r]);
                        s[c][r] = p;
                        sum[r] += p;
                    }
                }
                for (int64_t r = 0; r < QUERY_ROWS; ++r) {
                    rescale[r] = m[r] == -INFINITY ? 1.0f : fast_exp(top[r] - m[r]);  // ~0 after -inf
                    total[r] = total[r] * rescale[r] + sum[r];
                    top[r] = m[r];
                }
                // out = out * rescale + p v, 8 columns by 2 x LANES rows in registers
                const float* vb = V + j0 * dim;
                int64_t d = 0;
                for (; d + 8 <= dim; d += 8) accumulate<8>(ot.data(), &s[0][0], vb, rescale, keys, dim, d);
                for (; d < dim; ++d) accumulate<1>(ot.data(), &s[0][0], vb, rescale, keys, dim, d);
            }
            for (int64_t r = 0; r < rows; ++r) {
                const float inverse = total[r] > 0.0f ? 1.0f / total[r] : 0.0f;
                for (int64_t d = 0; d < dim; ++d) out[(bh * n + i0 + r) * dim + d] = ot[d * QUERY_ROWS + r] * inverse;
            }
        }
    }
}
"""
SOURCE = (
    TEMPLATE.replace("QUERY_ROWS", str(QUERY_ROWS)).replace("KEY_BLOCK", str(KEY_BLOCK)).replace("LANES", str(LANES))
)
lib = load(SOURCE)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, q, k, v):
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        out = torch.empty_like(q)
        lib.attention(q, k, v, out, *q.shape)
        return out
