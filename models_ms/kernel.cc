// One target tensor of a growth recipe in one pass: a MindSpore custom operator
// (ops.Custom, func_type "aot"; built by harness/core/execution/kernel_build.py, called by models_ms/expand.py).
//
//   y[i, j] = S[k][ridx[i], cidx[j]] / d        k = rsel[i] (cat axis 0) or csel[j] (cat axis 1), else 0
//                                               d = dv[i] (div axis 0), dv[j] (div axis 1), else no division
//
// harness/core/execution/kernel.py builds the index arrays from the recipe (concat -> divide -> gather,
// harness/core/recipe.py): the same source element divided by the same float32 divisor, so
// the bits equal the framework-ops executor's. A 1-D tensor is one row (R = 1).
// Plain C++ (no fast-math): the division is IEEE float32, as in every framework.
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

namespace {

struct Take {
  const float *src[2];
  int64_t rows[2], cols[2];
  const int32_t *rsel, *csel;
  const int64_t *ridx, *cidx;
  const float *dv;
  int64_t cat, div, R, C;
  float *y;
};

void fill_rows(const Take &t, int64_t r0, int64_t r1) {
  for (int64_t i = r0; i < r1; ++i) {
    float *yr = t.y + i * t.C;
    if (t.cat == 1) {   // the source changes along the row
      const float *p[2] = {t.src[0] + t.ridx[i] * t.cols[0], t.src[1] + t.ridx[i] * t.cols[1]};
      if (t.div == 1) {
        for (int64_t j = 0; j < t.C; ++j) yr[j] = p[t.csel[j]][t.cidx[j]] / t.dv[j];
      } else if (t.div == 0) {
        const float d = t.dv[i];
        for (int64_t j = 0; j < t.C; ++j) yr[j] = p[t.csel[j]][t.cidx[j]] / d;
      } else {
        for (int64_t j = 0; j < t.C; ++j) yr[j] = p[t.csel[j]][t.cidx[j]];
      }
    } else {            // one source row per target row
      const int32_t k = t.cat == 0 ? t.rsel[i] : 0;
      const float *p = t.src[k] + t.ridx[i] * t.cols[k];
      if (t.div == 1) {
        for (int64_t j = 0; j < t.C; ++j) yr[j] = p[t.cidx[j]] / t.dv[j];
      } else if (t.div == 0) {
        const float d = t.dv[i];
        for (int64_t j = 0; j < t.C; ++j) yr[j] = p[t.cidx[j]] / d;
      } else {
        for (int64_t j = 0; j < t.C; ++j) yr[j] = p[t.cidx[j]];
      }
    }
  }
}

// Every index in range before anything is read: a bad index is an error code, never a stray read.
bool in_range(const Take &t) {
  for (int64_t i = 0; i < t.R; ++i) {
    const int32_t k = t.cat == 0 ? t.rsel[i] : 0;
    if (k < 0 || k > 1 || t.ridx[i] < 0 || t.ridx[i] >= t.rows[k]) return false;
    if (t.cat == 1 && (t.ridx[i] >= t.rows[0] || t.ridx[i] >= t.rows[1])) return false;
  }
  for (int64_t j = 0; j < t.C; ++j) {
    const int32_t k = t.cat == 1 ? t.csel[j] : 0;
    if (k < 0 || k > 1 || t.cidx[j] < 0 || t.cidx[j] >= t.cols[k]) return false;
    if (t.cat == 0 && (t.cidx[j] >= t.cols[0] || t.cidx[j] >= t.cols[1])) return false;
  }
  return true;
}

// Every argument's dtype and rank as Kernel expects them.
bool well_formed(int nparam, const int *ndims, int64_t **shapes, const char **dtypes) {
  static const char *const kDtype[9] = {"float32", "float32", "int32", "int64", "int32",
                                        "int64", "float32", "int64", "float32"};
  if (nparam != 9) return false;
  for (int i = 0; i < 9; ++i) {
    if (std::strcmp(dtypes[i], kDtype[i]) != 0) return false;
    if (i >= 2 && i <= 7 && ndims[i] != 1) return false;
  }
  if (ndims[0] != ndims[1] || ndims[0] < 1 || ndims[0] > 2 || ndims[8] != ndims[0]) return false;
  return shapes[7][0] == 3;
}

}  // namespace

// Inputs: s0, s1 float32 (1-D or 2-D; s1 = s0 when there is one source), rsel int32[R],
// ridx int64[R], csel int32[C], cidx int64[C], dv float32 (length R, C or 1),
// meta int64[3] = {cat axis (-1, 0, 1), div axis (-1, 0, 1), threads}. Output: float32 [R, C] or [C].
// Returns 0, or 1 (wrong arguments) / 2 (an index out of range) with nothing written.
extern "C" int Kernel(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                        void *stream, void *extra) {
  (void)stream; (void)extra;
  if (!well_formed(nparam, ndims, shapes, dtypes)) return 1;
  Take t;
  for (int k = 0; k < 2; ++k) {
    t.src[k] = static_cast<const float *>(params[k]);
    t.rows[k] = ndims[k] == 1 ? 1 : shapes[k][0];
    t.cols[k] = ndims[k] == 1 ? shapes[k][0] : shapes[k][1];
  }
  t.rsel = static_cast<const int32_t *>(params[2]);
  t.ridx = static_cast<const int64_t *>(params[3]);
  t.csel = static_cast<const int32_t *>(params[4]);
  t.cidx = static_cast<const int64_t *>(params[5]);
  t.dv = static_cast<const float *>(params[6]);
  const int64_t *meta = static_cast<const int64_t *>(params[7]);
  t.cat = meta[0];
  t.div = meta[1];
  t.R = shapes[3][0];
  t.C = shapes[5][0];
  t.y = static_cast<float *>(params[8]);
  const int64_t dv_len = shapes[6][0];
  const bool out_shape = ndims[8] == 2 ? shapes[8][0] == t.R && shapes[8][1] == t.C : shapes[8][0] == t.C;
  if (shapes[2][0] != t.R || shapes[4][0] != t.C || t.cat < -1 || t.cat > 1 || t.div < -1 || t.div > 1 ||
      (t.div == 0 && dv_len != t.R) || (t.div == 1 && dv_len != t.C) || (ndims[0] == 1 && t.R != 1) || !out_shape) {
    return 1;
  }
  if (!in_range(t)) return 2;

  // Split the rows over threads when the tensor is large enough to repay starting them; rows a
  // thread could not be started for are filled here.
  const int64_t threads = meta[2] < 1 ? 1 : (meta[2] > 64 ? 64 : meta[2]);
  if (threads == 1 || t.R * t.C < (int64_t{1} << 18) || t.R < 2 * threads) {
    fill_rows(t, 0, t.R);
    return 0;
  }
  const int64_t step = (t.R + threads - 1) / threads;
  std::vector<std::thread> pool;
  int64_t started_to = step;   // rows [step, started_to) are another thread's
  try {
    for (; started_to < t.R; started_to += step) {
      pool.emplace_back(fill_rows, std::cref(t), started_to, started_to + step < t.R ? started_to + step : t.R);
    }
  } catch (...) {   // no thread (or no room to hold one): this thread fills the rest
  }
  fill_rows(t, 0, step);
  if (started_to < t.R) fill_rows(t, started_to, t.R);
  for (auto &th : pool) th.join();
  return 0;
}
