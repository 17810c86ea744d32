/* The per-pixel work around inference, each in one pass over the frame: kernels.py says what each
 * function computes and which formula it follows.
 *
 * C99 with GCC vector extensions (gcc, clang), Python's C API only: buffers arrive through the buffer
 * protocol as strided views (no numpy headers, so one build serves numpy 1.x and 2.x), every access
 * stays inside the shape a buffer declares, and the GIL is released while a function computes.
 * On x86-64 the loops are compiled twice, for the baseline (SSE2) and for AVX2 with FMA, and the CPU
 * picks at import (instruction_set()); elsewhere once (aarch64's baseline has NEON). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the packed pixel words below assume a little-endian CPU"
#endif

#define INLINE static inline __attribute__((always_inline))
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define X86_DISPATCH 1
#include <immintrin.h>
#else
#define X86_DISPATCH 0
#endif

typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
#ifdef __clang__
#define SHUFFLE(a, b, i, j, k, l) __builtin_shufflevector(a, b, i, j, k, l)
#else
#define SHUFFLE(a, b, i, j, k, l) __builtin_shuffle(a, b, (v4i){i, j, k, l})
#endif

INLINE v4f load4(const float *p)
{
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}

INLINE void store4(float *p, v4f v)
{
    memcpy(p, &v, sizeof v);
}

/* `name(Job *, lanes)` compiled for each instruction set and picked at run time: on x86-64 the baseline
 * (SSE2), AVX2 + FMA (use_avx2), and that with AVX-512 F, BW, VL and VBMI (use_avx512: the compiler's own
 * use of them, and the colormap's lookups by colormap_row_vbmi); NEON on aarch64. `lanes`: how many floats
 * a run-time permutation handles in one instruction (AVX2 8, NEON 4; 0 where there is none: SSE2, where
 * the compiler would permute through memory). */
#if X86_DISPATCH
static int use_avx2, use_avx512;
#define AVX512 "avx2,fma,avx512f,avx512bw,avx512vl,avx512vbmi"
#define COMPILED_PER_CPU(name, Job)                                                                 \
    __attribute__((target(AVX512))) static void name##_avx512(Job *job) { name(job, 8); }          \
    __attribute__((target("avx2,fma"))) static void name##_avx2(Job *job) { name(job, 8); }        \
    static void name##_baseline(Job *job) { name(job, 0); }                                        \
    static void run_##name(Job *job)                                                               \
    {                                                                                              \
        use_avx512 ? name##_avx512(job) : use_avx2 ? name##_avx2(job) : name##_baseline(job);      \
    }
#elif defined(__aarch64__)
#define COMPILED_PER_CPU(name, Job) \
    static void run_##name(Job *job) { name(job, 4); }
#else
#define COMPILED_PER_CPU(name, Job) \
    static void run_##name(Job *job) { name(job, 0); }
#endif

/* ------------------------------------------------------------------ buffers */

typedef struct {
    Py_buffer view;
    char *data;
    Py_ssize_t shape[3];
    Py_ssize_t strides[3];  /* bytes */
} Array;

/* A strided view of `obj`: `ndim` dimensions of `kind` items ('B' uint8, 'f' float32), no negative
 * strides, none empty. */
static int array_get(PyObject *obj, Array *a, int ndim, char kind, int writable, const char *name)
{
    memset(a, 0, sizeof(*a));
    if (PyObject_GetBuffer(obj, &a->view, PyBUF_STRIDES | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return -1;
    const char *fmt = a->view.format ? a->view.format : "B";
    if (*fmt == '<' || *fmt == '=' || *fmt == '@')
        fmt++;
    Py_ssize_t itemsize = kind == 'f' ? 4 : 1;
    int ok = fmt[0] == kind && fmt[1] == '\0' && a->view.itemsize == itemsize && a->view.ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) {
        a->shape[i] = a->view.shape[i];
        a->strides[i] = a->view.strides[i];
        ok = a->shape[i] > 0 && a->strides[i] >= 0 && a->strides[i] % itemsize == 0;
    }
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "%s: a non-empty %d-D %s array with non-negative strides expected", name,
                     ndim, kind == 'f' ? "float32" : "uint8");
        PyBuffer_Release(&a->view);
        return -1;
    }
    a->data = a->view.buf;
    return 0;
}

static void array_release(Array *a)
{
    if (a->data)
        PyBuffer_Release(&a->view);
    a->data = NULL;
}

static int three_numbers(PyObject *seq, double *out, const char *name)
{
    PyObject *fast = PySequence_Fast(seq, name);
    if (!fast)
        return -1;
    int ok = PySequence_Fast_GET_SIZE(fast) == 3;
    for (int i = 0; ok && i < 3; i++) {
        out[i] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(fast, i));
        ok = !PyErr_Occurred();
    }
    Py_DECREF(fast);
    if (!ok && !PyErr_Occurred())
        PyErr_Format(PyExc_ValueError, "%s: three numbers expected", name);
    return ok ? 0 : -1;
}

/* ------------------------------------------------------------------ cubic resize into planes */

/* cv::resize's cubic weights (interpolateCubic, A = -0.75), in float as it computes them. */
static void cubic_weights(float x, float *c)
{
    const float A = -0.75f;
    c[0] = ((A * (x + 1) - 5 * A) * (x + 1) + 8 * A) * (x + 1) - 4 * A;
    c[1] = ((A + 2) * x - (A + 3)) * x * x + 1;
    c[2] = ((A + 2) * (1 - x) - (A + 3)) * (1 - x) * (1 - x) + 1;
    c[3] = 1.f - c[0] - c[1] - c[2];
}

/* cv::resize's cubic grid: output i reads inputs s - 1 .. s + 2, s = floor(f), f = (i + 0.5) * n_in / n_out
 * - 0.5 (in double, then float), weights of f - s. Returns s - 1 per output, which lies in -2 .. n_in - 2:
 * the caller clamps the taps to the image (OpenCV's border replication). */
static void cubic_grid(Py_ssize_t n_in, Py_ssize_t n_out, int32_t *first, float *weight)
{
    double scale = 1.0 / ((double)n_out / (double)n_in);
    for (Py_ssize_t i = 0; i < n_out; i++) {
        float f = (float)((i + 0.5) * scale - 0.5);
        float s = floorf(f);
        cubic_weights(f - s, weight + 4 * i);
        Py_ssize_t tap = (Py_ssize_t)s - 1;
        first[i] = (int32_t)(tap < -2 ? -2 : tap > n_in - 2 ? n_in - 2 : tap);
    }
}

enum { PAD = 2 };  /* pixels of border replication on either side of a resized row: taps reach -2 .. n + 1 */

typedef struct {
    /* the source rectangle: packed pixels, or NV12 planes converted to RGBx rows on the way */
    const uint8_t *pixels;          /* packed: the rectangle's first pixel */
    const uint8_t *luma, *chroma;   /* NV12: the planes' first rows (luma NULL for packed sources) */
    Py_ssize_t x0, y0;              /* NV12: the rectangle's origin in the frame */
    int u_at, v_at;                 /* NV12: bytes of U and V in a chroma pair (NV21 swaps them) */
    Py_ssize_t row_stride, pixel_stride, channels, width, height;
    /* the destination planes */
    char *out;
    Py_ssize_t plane_stride, out_row_stride, item_stride, out_height, out_width;
    int channel[3];                 /* plane c takes the source pixel's channel[c] (RGB for NV12) */
    float gain[3], bias[3];
    /* work space */
    int32_t *x_first, *y_first;
    float *x_weight, *y_weight;
    float *line;                    /* one row after the vertical pass, PAD pixels of border each side */
    uint32_t *ring;                 /* NV12: the last four rows converted, RGBx */
    Py_ssize_t ring_row[4];
    int32_t *terms;                 /* NV12: the chroma terms of frame chroma row terms_row (nv12_row) */
    Py_ssize_t terms_row;
} Cubic;

enum { YUV_SHIFT = 20, YUV_CY = 1220542, YUV_CUB = 2116026, YUV_CUG = -409993, YUV_CVG = -852492,
       YUV_CVR = 1673527, YUV_HALF = 1 << (YUV_SHIFT - 1) };

INLINE int clamp_byte(int v)
{
    return v < 0 ? 0 : v > 255 ? 255 : v;
}

/* OpenCV's NV12 -> RGB, BT.601 video range (cvtColor COLOR_YUV2RGB_NV12), in two parts: per pixel the terms
 * r, g, b of its chroma pair (what the four pixels sharing it have in common), then its luma added, as the
 * word R G B 0. Pointers as parameters, so that the compiler knows the rows apart and vectorizes. */
INLINE void chroma_terms(const uint8_t *restrict u, const uint8_t *restrict v, Py_ssize_t pairs,
                         int32_t *restrict r, int32_t *restrict g, int32_t *restrict b)
{
    for (Py_ssize_t p = 0; p < pairs; p++) {
        const int cu = u[2 * p] - 128, cv = v[2 * p] - 128;
        r[2 * p] = r[2 * p + 1] = YUV_HALF + YUV_CVR * cv;
        g[2 * p] = g[2 * p + 1] = YUV_HALF + YUV_CVG * cv + YUV_CUG * cu;
        b[2 * p] = b[2 * p + 1] = YUV_HALF + YUV_CUB * cu;
    }
}

INLINE void luma_row(const uint8_t *restrict y, Py_ssize_t n, const int32_t *restrict r, const int32_t *restrict g,
                     const int32_t *restrict b, uint32_t *restrict out)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        const int luma = (y[i] < 16 ? 0 : y[i] - 16) * YUV_CY;
        out[i] = (uint32_t)clamp_byte((luma + r[i]) >> YUV_SHIFT) | (uint32_t)clamp_byte((luma + g[i]) >> YUV_SHIFT) << 8 |
                 (uint32_t)clamp_byte((luma + b[i]) >> YUV_SHIFT) << 16;
    }
}

/* Row `row` of the rectangle as RGBx. The chroma terms are kept for the next row, which shares them (the
 * rows are read in order). */
INLINE void nv12_row(Cubic *job, Py_ssize_t row, uint32_t *restrict out)
{
    const Py_ssize_t frame_row = job->y0 + row, first = job->x0 / 2;
    const Py_ssize_t pairs = (job->x0 + job->width - 1) / 2 - first + 1, stride = 2 * pairs;
    int32_t *r = job->terms, *g = r + stride, *b = g + stride;  /* from frame column 2 first */
    if (job->terms_row != frame_row / 2) {
        const uint8_t *uv = job->chroma + frame_row / 2 * job->row_stride + 2 * first;
        chroma_terms(uv + job->u_at, uv + job->v_at, pairs, r, g, b);
        job->terms_row = frame_row / 2;
    }
    const Py_ssize_t odd = job->x0 & 1;
    luma_row(job->luma + frame_row * job->row_stride + job->x0, job->width, r + odd, g + odd, b + odd, out);
}

INLINE const uint8_t *source_row(Cubic *job, Py_ssize_t row)
{
    if (!job->luma)
        return job->pixels + row * job->row_stride;
    Py_ssize_t slot = row & 3;
    uint32_t *rgbx = job->ring + slot * job->width;
    if (job->ring_row[slot] != row) {
        nv12_row(job, row, rgbx);
        job->ring_row[slot] = row;
    }
    return (const uint8_t *)rgbx;
}

/* line[i] = sum of b[k] r_k[i]: the four source rows of an output row, as one contiguous pass. */
INLINE void vertical(const uint8_t *restrict r0, const uint8_t *restrict r1, const uint8_t *restrict r2,
                     const uint8_t *restrict r3, const float *b, Py_ssize_t n, float *restrict line)
{
    const float b0 = b[0], b1 = b[1], b2 = b[2], b3 = b[3];
    for (Py_ssize_t i = 0; i < n; i++)
        line[i] = b0 * r0[i] + b1 * r1[i] + b2 * r2[i] + b3 * r3[i];
}

INLINE float *plane_row(const Cubic *job, int c, Py_ssize_t y)
{
    return (float *)(job->out + c * job->plane_stride + y * job->out_row_stride);
}

INLINE void put(const Cubic *job, float *row, Py_ssize_t x, float value)
{
    *(float *)((char *)row + x * job->item_stride) = value;
}

/* One output row from the line, four taps per output pixel, any pixel stride. */
INLINE void horizontal_taps(const Cubic *job, const float *line, Py_ssize_t y, Py_ssize_t from, Py_ssize_t step)
{
    for (int c = 0; c < 3; c++) {
        float *row = plane_row(job, c, y);
        const float *t = line + job->channel[c];
        for (Py_ssize_t x = from; x < job->out_width; x++) {
            const float *p = t + (job->x_first[x] + PAD) * step, *w = job->x_weight + 4 * x;
            put(job, row, x, (w[0] * p[0] + w[1] * p[step] + w[2] * p[2 * step] + w[3] * p[3 * step]) * job->gain[c] +
                                 job->bias[c]);
        }
    }
}

/* The same for 3- and 4-channel pixels (step 3 or 4): each tap a vector of the pixel's channels, four
 * output pixels transposed into four values per plane. `order`: the planes take channels 0 1 2 (0),
 * 2 1 0 (1), or job->channel (2, slower: the lanes go through memory). */
INLINE void horizontal_pixels(const Cubic *job, const float *line, Py_ssize_t y, const Py_ssize_t step,
                              const int order)
{
    float *rows[3] = {plane_row(job, 0, y), plane_row(job, 1, y), plane_row(job, 2, y)};
    const int contiguous = job->item_stride == sizeof(float);
    const v4f zero = {0, 0, 0, 0};
    const v4f gain[3] = {zero + job->gain[0], zero + job->gain[1], zero + job->gain[2]};
    const v4f bias[3] = {zero + job->bias[0], zero + job->bias[1], zero + job->bias[2]};
    Py_ssize_t x = 0;
    for (; x + 4 <= job->out_width; x += 4) {
        v4f acc[4];
        for (int i = 0; i < 4; i++) {
            const float *p = line + (job->x_first[x + i] + PAD) * step, *w = job->x_weight + 4 * (x + i);
            acc[i] = w[0] * load4(p) + w[1] * load4(p + step) + w[2] * load4(p + 2 * step) + w[3] * load4(p + 3 * step);
        }
        v4f low01 = SHUFFLE(acc[0], acc[1], 0, 4, 1, 5), low23 = SHUFFLE(acc[2], acc[3], 0, 4, 1, 5);
        v4f high01 = SHUFFLE(acc[0], acc[1], 2, 6, 3, 7), high23 = SHUFFLE(acc[2], acc[3], 2, 6, 3, 7);
        v4f lane0 = SHUFFLE(low01, low23, 0, 1, 4, 5), lane1 = SHUFFLE(low01, low23, 2, 3, 6, 7);
        v4f lane2 = SHUFFLE(high01, high23, 0, 1, 4, 5), planes[3];
        if (order == 0) {
            planes[0] = lane0, planes[1] = lane1, planes[2] = lane2;
        } else if (order == 1) {
            planes[0] = lane2, planes[1] = lane1, planes[2] = lane0;
        } else {
            v4f lanes[4] = {lane0, lane1, lane2, SHUFFLE(high01, high23, 2, 3, 6, 7)};
            for (int c = 0; c < 3; c++)
                planes[c] = lanes[job->channel[c]];
        }
        for (int c = 0; c < 3; c++) {
            v4f value = planes[c] * gain[c] + bias[c];
            if (contiguous) {
                store4(rows[c] + x, value);
            } else {
                for (int i = 0; i < 4; i++)
                    put(job, rows[c], x + i, value[i]);
            }
        }
    }
    horizontal_taps(job, line, y, x, step);
}

INLINE void cubic_planes(Cubic *job, const int lanes)
{
    (void)lanes;
    const Py_ssize_t step = job->luma ? 4 : job->pixel_stride;
    const Py_ssize_t n = (job->width - 1) * step + (job->luma ? 3 : job->channels);
    float *line = job->line;
    for (Py_ssize_t y = 0; y < job->out_height; y++) {
        const uint8_t *rows[4];
        for (int k = 0; k < 4; k++) {
            Py_ssize_t r = job->y_first[y] + k;
            rows[k] = source_row(job, r < 0 ? 0 : r >= job->height ? job->height - 1 : r);
        }
        vertical(rows[0], rows[1], rows[2], rows[3], job->y_weight + 4 * y, n, line + PAD * step);
        for (int p = 0; p < PAD; p++) {  /* OpenCV's border replication */
            memcpy(line + p * step, line + PAD * step, step * sizeof(float));
            memcpy(line + (PAD + job->width + p) * step, line + (PAD + job->width - 1) * step, step * sizeof(float));
        }
        if ((step == 3 || step == 4) && (job->luma || job->channels >= 3)) {
            const int *ch = job->channel, order = ch[0] == 0 && ch[1] == 1 && ch[2] == 2 ? 0
                                                : ch[0] == 2 && ch[1] == 1 && ch[2] == 0 ? 1 : 2;
            if (step == 3)
                order == 0 ? horizontal_pixels(job, line, y, 3, 0) : order == 1 ? horizontal_pixels(job, line, y, 3, 1)
                                                                   : horizontal_pixels(job, line, y, 3, 2);
            else
                order == 0 ? horizontal_pixels(job, line, y, 4, 0) : horizontal_pixels(job, line, y, 4, 2);
        } else
            horizontal_taps(job, line, y, 0, step);
    }
}

COMPILED_PER_CPU(cubic_planes, Cubic)

static int cubic_destination(Cubic *job, PyObject *dst, Array *out, PyObject *channels, PyObject *gains,
                             PyObject *biases, int channel_limit)
{
    if (array_get(dst, out, 3, 'f', 1, "dst") < 0)
        return -1;
    double ch[3], gain[3], bias[3];
    if (out->shape[0] != 3) {
        PyErr_SetString(PyExc_ValueError, "dst: 3 planes expected");
        return -1;
    }
    if (three_numbers(channels, ch, "channels") < 0 || three_numbers(gains, gain, "gains") < 0 ||
        three_numbers(biases, bias, "biases") < 0)
        return -1;
    for (int c = 0; c < 3; c++) {
        job->channel[c] = (int)ch[c];
        job->gain[c] = (float)gain[c];
        job->bias[c] = (float)bias[c];
        if (ch[c] != job->channel[c] || job->channel[c] < 0 || job->channel[c] >= channel_limit) {
            PyErr_Format(PyExc_ValueError, "channels: each one of 0..%d", channel_limit - 1);
            return -1;
        }
    }
    job->out = out->data;
    job->plane_stride = out->strides[0];
    job->out_row_stride = out->strides[1];
    job->item_stride = out->strides[2];
    job->out_height = out->shape[1];
    job->out_width = out->shape[2];
    return 0;
}

static PyObject *run_cubic(Cubic *job)
{
    Py_ssize_t step = job->luma ? 4 : job->pixel_stride;
    job->x_first = malloc(sizeof(int32_t) * job->out_width);
    job->y_first = malloc(sizeof(int32_t) * job->out_height);
    job->x_weight = malloc(sizeof(float) * 4 * job->out_width);
    job->y_weight = malloc(sizeof(float) * 4 * job->out_height);
    job->line = calloc((job->width + 2 * PAD) * step + 4, sizeof(float));
    job->ring = job->luma ? malloc(sizeof(uint32_t) * 4 * job->width) : NULL;
    job->terms = job->luma ? malloc(sizeof(int32_t) * 3 * (job->width + 2)) : NULL;
    job->terms_row = -1;
    PyObject *result = NULL;
    if (job->x_first && job->y_first && job->x_weight && job->y_weight && job->line && ((job->ring && job->terms) || !job->luma)) {
        for (int i = 0; i < 4; i++)
            job->ring_row[i] = -1;
        cubic_grid(job->width, job->out_width, job->x_first, job->x_weight);
        cubic_grid(job->height, job->out_height, job->y_first, job->y_weight);
        Py_BEGIN_ALLOW_THREADS
        run_cubic_planes(job);
        Py_END_ALLOW_THREADS
        result = Py_None;
        Py_INCREF(result);
    } else {
        PyErr_NoMemory();
    }
    free(job->x_first);
    free(job->y_first);
    free(job->x_weight);
    free(job->y_weight);
    free(job->line);
    free(job->ring);
    free(job->terms);
    return result;
}

static PyObject *py_cubic_planes(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *src_obj, *dst_obj, *channels, *gains, *biases, *result = NULL;
    if (!PyArg_ParseTuple(args, "OOOOO", &src_obj, &dst_obj, &channels, &gains, &biases))
        return NULL;
    Array src, dst = {0};
    if (array_get(src_obj, &src, 3, 'B', 0, "src") < 0)
        return NULL;
    Cubic job = {0};
    if ((src.shape[2] > 1 && src.strides[2] != 1) || src.strides[1] < src.shape[2]) {
        PyErr_SetString(PyExc_ValueError, "src: an HxWxC image with contiguous channels expected");
    } else if (cubic_destination(&job, dst_obj, &dst, channels, gains, biases, (int)src.shape[2]) == 0) {
        job.pixels = (const uint8_t *)src.data;
        job.row_stride = src.strides[0];
        job.pixel_stride = src.strides[1];
        job.channels = src.shape[2];
        job.height = src.shape[0];
        job.width = src.shape[1];
        result = run_cubic(&job);
    }
    array_release(&src);
    array_release(&dst);
    return result;
}

static PyObject *py_cubic_planes_nv12(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *src_obj, *dst_obj, *channels, *gains, *biases, *result = NULL;
    Py_ssize_t x, y, w, h;
    int v_first;
    if (!PyArg_ParseTuple(args, "O(nnnn)pOOOO", &src_obj, &x, &y, &w, &h, &v_first, &dst_obj, &channels, &gains,
                          &biases))
        return NULL;
    Array src, dst = {0};
    if (array_get(src_obj, &src, 2, 'B', 0, "nv12") < 0)
        return NULL;
    Py_ssize_t rows = src.shape[0] / 3 * 2, cols = src.shape[1];
    Cubic job = {0};
    if (src.strides[1] != 1 || src.shape[0] % 3 || rows % 2 || cols % 2) {
        PyErr_SetString(PyExc_ValueError, "nv12: a (H*3/2)xW array with even H and W and contiguous rows expected");
    } else if (x < 0 || y < 0 || w < 1 || h < 1 || x + w > cols || y + h > rows) {
        PyErr_SetString(PyExc_ValueError, "nv12: the rectangle is not inside the frame");
    } else if (cubic_destination(&job, dst_obj, &dst, channels, gains, biases, 3) == 0) {
        job.luma = (const uint8_t *)src.data;
        job.chroma = job.luma + rows * src.strides[0];
        job.row_stride = src.strides[0];
        job.x0 = x;
        job.y0 = y;
        job.u_at = v_first ? 1 : 0;
        job.v_at = v_first ? 0 : 1;
        job.width = w;
        job.height = h;
        result = run_cubic(&job);
    }
    array_release(&src);
    array_release(&dst);
    return result;
}

/* ------------------------------------------------------------------ bilinear upsampling */

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef uint8_t v16u8 __attribute__((vector_size(16)));

#define load8(p) ({ v8f v_; memcpy(&v_, (p), sizeof v_); v_; })

enum { ROW_PAD = 8 };  /* copies of the last sample after a source row: the right neighbour of the last one */

/* The `lanes` the loops run with (COMPILED_PER_CPU). */
static int permutation_lanes(void)
{
#if X86_DISPATCH
    return use_avx2 ? 8 : 0;
#elif defined(__aarch64__)
    return 4;
#else
    return 0;
#endif
}

/* One axis of a bilinear map: output i = in[left[i]] + weight[i] (in[left[i] + 1] - in[left[i]]). Blocks of
 * `lanes` outputs whose inputs lie within `lanes` + 1 samples (upsampling) take two vector loads and two
 * permutations: by float (`spread`, AVX2's vpermps) or by byte (`select`, NEON's tbl). */
typedef struct {
    Py_ssize_t n_in, n_out;
    int32_t *left;
    float *weight;
    int32_t *spread;   /* per output: left - left of its block's first */
    uint8_t *select;   /* per output: the 4 bytes of that float */
    uint8_t *fits;     /* per block */
} Axis;

static int axis_alloc(Axis *a, Py_ssize_t n_in, Py_ssize_t n_out)
{
    a->n_in = n_in;
    a->n_out = n_out;
    a->left = malloc(sizeof(int32_t) * n_out);
    a->weight = malloc(sizeof(float) * n_out);
    a->spread = malloc(sizeof(int32_t) * n_out);
    a->select = malloc(4 * n_out);
    a->fits = malloc(n_out / 4 + 1);
    return a->left && a->weight && a->spread && a->select && a->fits ? 0 : -1;
}

static void axis_free(Axis *a)
{
    free(a->left);
    free(a->weight);
    free(a->spread);
    free(a->select);
    free(a->fits);
}

static void axis_blocks(Axis *a, int lanes)
{
    for (Py_ssize_t b = 0; lanes && b < a->n_out / lanes; b++) {
        const int32_t *left = a->left + lanes * b;
        a->fits[b] = left[lanes - 1] - left[0] <= lanes - 1;
        for (int i = 0; i < lanes; i++) {
            int32_t spread = a->fits[b] ? left[i] - left[0] : 0;
            a->spread[lanes * b + i] = spread;
            for (int k = 0; k < 4; k++)
                a->select[4 * (lanes * b + i) + k] = (uint8_t)(4 * spread + k);
        }
    }
}

/* PyTorch's upsample_bilinear2d(align_corners=True) grid: output i samples input i * (n_in - 1) / (n_out - 1),
 * the scale and the product in float32. */
static void corner_axis(Axis *a, int lanes)
{
    float scale = a->n_out > 1 ? (float)(a->n_in - 1) / (float)(a->n_out - 1) : 0.f;
    for (Py_ssize_t i = 0; i < a->n_out; i++) {
        float x = (float)i * scale;
        Py_ssize_t l = (Py_ssize_t)x;
        l = l > a->n_in - 1 ? a->n_in - 1 : l;
        a->left[i] = (int32_t)l;
        a->weight[i] = x - (float)l;
    }
    axis_blocks(a, lanes);
}

/* cv::resize's INTER_LINEAR grid (pixel centres): output i samples f = (i + 0.5) * n_in / n_out - 0.5,
 * clamped to the edge samples. */
static void centre_axis(Axis *a, int lanes)
{
    double scale = (double)a->n_in / (double)a->n_out;
    for (Py_ssize_t i = 0; i < a->n_out; i++) {
        double f = (i + 0.5) * scale - 0.5, l = floor(f), frac = f - l;
        if (l < 0)
            l = 0, frac = 0;
        if (l >= a->n_in - 1)
            l = (double)(a->n_in - 1), frac = 0;
        a->left[i] = (int32_t)l;
        a->weight[i] = (float)frac;
    }
    axis_blocks(a, lanes);
}

/* `in` (n_in samples, then ROW_PAD copies of the last) resampled along `axis` into `out`: blocks of
 * `lanes` outputs by permutation while they fit (upsampling), then one output at a time. */
INLINE void lerp_row(const Axis *axis, const float *in, float *restrict out, const int lanes)
{
    Py_ssize_t x = 0;
#ifndef __clang__  /* clang has no permutation by a run-time index vector */
    if (lanes == 8)
        for (; x + 8 <= axis->n_out && axis->fits[x / 8]; x += 8) {
            const float *p = in + axis->left[x];
            v8i spread;
            v8f weight, value;
            memcpy(&spread, axis->spread + x, sizeof spread);
            memcpy(&weight, axis->weight + x, sizeof weight);
            v8f a = __builtin_shuffle(load8(p), spread), c = __builtin_shuffle(load8(p + 1), spread);
            value = a + weight * (c - a);
            memcpy(out + x, &value, sizeof value);
        }
    if (lanes == 4)
        for (; x + 4 <= axis->n_out && axis->fits[x / 4]; x += 4) {
            const float *p = in + axis->left[x];
            v16u8 select, a8, c8;
            v4f weight, value;
            memcpy(&select, axis->select + 4 * x, sizeof select);
            memcpy(&weight, axis->weight + x, sizeof weight);
            memcpy(&a8, p, sizeof a8);
            memcpy(&c8, p + 1, sizeof c8);
            v4f a = (v4f)__builtin_shuffle(a8, select), c = (v4f)__builtin_shuffle(c8, select);
            value = a + weight * (c - a);
            memcpy(out + x, &value, sizeof value);
        }
#endif
    for (; x < axis->n_out; x++) {
        const float *p = in + axis->left[x];
        out[x] = p[0] + axis->weight[x] * (p[1] - p[0]);
    }
}

/* Two source rows resampled along x, cached by row parity: each source row is resampled once. */
typedef struct {
    float *rows;       /* 2 x n_out */
    float *source;     /* one source row as float, ROW_PAD padded */
    Py_ssize_t cached[2];
} RowPair;

static int pair_alloc(RowPair *p, const Axis *x)
{
    p->rows = malloc(sizeof(float) * 2 * x->n_out);
    p->source = malloc(sizeof(float) * (x->n_in + ROW_PAD));
    p->cached[0] = p->cached[1] = -1;
    return p->rows && p->source ? 0 : -1;
}

static void pair_free(RowPair *p)
{
    free(p->rows);
    free(p->source);
}

typedef struct {
    const char *src;           /* float32 rows */
    Py_ssize_t src_row_stride, src_step;
    int to_levels;             /* colormap: resample clamp((value - lo) * scale, 0, 255), NaN 0 */
    float lo, scale;
    Py_ssize_t nonfinite;      /* colormap: NaN and infinite values among those read */
    char *dst;
    Py_ssize_t dst_row_stride, dst_step;
    Axis x, y;
    RowPair pair;
    uint32_t words[256];       /* colormap: entry i the bytes B G R 0 */
    uint8_t channel_lut[3][256];  /* ... and its B, G and R bytes apart */
    uint8_t *levels;           /* colormap: one output row of levels */
} Bilinear;

INLINE const float *resampled_row(Bilinear *job, Py_ssize_t r, const int lanes)
{
    float *slot = job->pair.rows + (r & 1) * job->x.n_out;
    if (job->pair.cached[r & 1] != r) {
        const char *row = job->src + r * job->src_row_stride;
        float *in = job->pair.source;
        const Py_ssize_t n = job->x.n_in, step = job->src_step;
        if (step == sizeof(float))
            memcpy(in, row, n * sizeof(float));
        else
            for (Py_ssize_t i = 0; i < n; i++)
                memcpy(in + i, row + i * step, sizeof(float));
        if (job->to_levels) {
            const float lo = job->lo, scale = job->scale;
            int32_t nonfinite = 0;
            for (Py_ssize_t i = 0; i < n; i++) {
                nonfinite += !(fabsf(in[i]) <= FLT_MAX);
                float level = (in[i] - lo) * scale;
                level = level > 0.f ? level : 0.f;  /* NaN too */
                in[i] = level < 255.f ? level : 255.f;
            }
            job->nonfinite += nonfinite;
        }
        for (int i = 0; i < ROW_PAD; i++)
            in[n + i] = in[n - 1];
        lerp_row(&job->x, in, slot, lanes);
        job->pair.cached[r & 1] = r;
    }
    return slot;
}

/* The two resampled source rows output row y lies between (the last one twice at the bottom edge). */
INLINE void row_pair(Bilinear *job, Py_ssize_t y, const float *restrict *a, const float *restrict *b,
                     const int lanes)
{
    Py_ssize_t top = job->y.left[y];
    *a = resampled_row(job, top, lanes);
    *b = resampled_row(job, top < job->y.n_in - 1 ? top + 1 : top, lanes);
}

INLINE void align_corners(Bilinear *job, const int lanes)
{
    const Py_ssize_t width = job->x.n_out;
    for (Py_ssize_t y = 0; y < job->y.n_out; y++) {
        const float *restrict a, *restrict b;
        row_pair(job, y, &a, &b, lanes);
        float *restrict out = (float *)(job->dst + y * job->dst_row_stride);
        const float f = job->y.weight[y];
        for (Py_ssize_t x = 0; x < width; x++)
            out[x] = a[x] + f * (b[x] - a[x]);
    }
}

COMPILED_PER_CPU(align_corners, Bilinear)

#if X86_DISPATCH
/* colormap_row_vbmi's interleaving of 64 pixels' B, G and R into their 192 bytes, set at import
 * (interleaving_tables): output byte j = 64 part + i is pixel j / 3's channel j % 3, taken from B or G by
 * from_bg[part][i] (G: + 64), or from R by from_r[part][i] where bit i of is_r[part] is set. */
static uint8_t from_bg[3][64], from_r[3][64];
static uint64_t is_r[3];

static void interleaving_tables(void)
{
    for (int part = 0; part < 3; part++)
        for (int i = 0; i < 64; i++) {
            const int j = 64 * part + i, pixel = j / 3, c = j % 3;
            from_bg[part][i] = (uint8_t)(c == 1 ? 64 + pixel : pixel);
            from_r[part][i] = (uint8_t)pixel;
            is_r[part] |= (uint64_t)(c == 2) << i;
        }
}

/* The colormap of levels[0 .. n - n % 64] into B G R pixels, 64 per step (the scalar lookups cost a third
 * of the colorized image): each channel's 256 entries are four registers, two vpermi2b and a blend on the
 * level's top bit look 64 up at once, and three pairs of byte permutations interleave the channels into
 * the 192 bytes of the 64 pixels. Returns how many pixels it did. */
__attribute__((target(AVX512))) static Py_ssize_t
colormap_row_vbmi(const uint8_t (*channel_lut)[256], const uint8_t *levels, Py_ssize_t n, uint8_t *out)
{
    __m512i table[3][4], bg[3], r[3];
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < 4; k++)
            table[c][k] = _mm512_loadu_si512(channel_lut[c] + 64 * k);
    for (int part = 0; part < 3; part++) {
        bg[part] = _mm512_loadu_si512(from_bg[part]);
        r[part] = _mm512_loadu_si512(from_r[part]);
    }
    Py_ssize_t x = 0;
    for (; x + 64 <= n; x += 64) {
        const __m512i level = _mm512_loadu_si512(levels + x);
        const __mmask64 upper = _mm512_movepi8_mask(level);
        __m512i v[3];
        for (int c = 0; c < 3; c++)
            v[c] = _mm512_mask_blend_epi8(upper, _mm512_permutex2var_epi8(table[c][0], level, table[c][1]),
                                          _mm512_permutex2var_epi8(table[c][2], level, table[c][3]));
        for (int part = 0; part < 3; part++) {
            __m512i bytes = _mm512_permutex2var_epi8(v[0], bg[part], v[1]);
            bytes = _mm512_mask_permutexvar_epi8(bytes, is_r[part], r[part], v[2]);
            _mm512_storeu_si512(out + 3 * x + 64 * part, bytes);
        }
    }
    return x;
}
#endif

INLINE void colormap_linear(Bilinear *job, const int lanes)
{
    const Py_ssize_t width = job->x.n_out;
    for (Py_ssize_t y = 0; y < job->y.n_out; y++) {
        const float *restrict a, *restrict b;
        row_pair(job, y, &a, &b, lanes);
        const float f = job->y.weight[y];
        uint8_t *out = (uint8_t *)job->dst + y * job->dst_row_stride;
        uint8_t *restrict levels = job->levels;
        for (Py_ssize_t x = 0; x < width; x++)
            levels[x] = (uint8_t)(a[x] + f * (b[x] - a[x]) + 0.5f);
        Py_ssize_t x = 0;
        if (job->dst_step == 3) {  /* four pixels as 8 + 4 bytes */
#if X86_DISPATCH
            if (lanes == 8 && use_avx512)
                x = colormap_row_vbmi(job->channel_lut, levels, width, out);
#endif
            for (; x + 4 <= width; x += 4) {
                uint64_t w0 = job->words[levels[x]], w1 = job->words[levels[x + 1]];
                uint64_t w2 = job->words[levels[x + 2]], w3 = job->words[levels[x + 3]];
                uint64_t first = w0 | w1 << 24 | w2 << 48;
                uint32_t second = (uint32_t)(w2 >> 16 | w3 << 8);
                memcpy(out + 3 * x, &first, 8);
                memcpy(out + 3 * x + 8, &second, 4);
            }
        }
        for (; x < width; x++)
            memcpy(out + x * job->dst_step, job->words + levels[x], 3);
    }
}

COMPILED_PER_CPU(colormap_linear, Bilinear)

/* Sets up `job` for src (h x w) -> dst (H x W) and runs `run` without the GIL. */
static PyObject *run_bilinear(Bilinear *job, const Array *src, const Array *dst, int corners,
                              void (*run)(Bilinear *))
{
    job->src = src->data;
    job->src_row_stride = src->strides[0];
    job->src_step = src->strides[1];
    job->dst = dst->data;
    job->dst_row_stride = dst->strides[0];
    job->dst_step = dst->strides[1];
    PyObject *result = NULL;
    int ok = axis_alloc(&job->x, src->shape[1], dst->shape[1]) == 0 &&
             axis_alloc(&job->y, src->shape[0], dst->shape[0]) == 0 && pair_alloc(&job->pair, &job->x) == 0;
    job->levels = malloc(dst->shape[1]);
    if (ok && job->levels) {
        int lanes = permutation_lanes();
        corners ? corner_axis(&job->x, lanes) : centre_axis(&job->x, lanes);
        corners ? corner_axis(&job->y, lanes) : centre_axis(&job->y, lanes);
        Py_BEGIN_ALLOW_THREADS
        run(job);
        Py_END_ALLOW_THREADS
        result = Py_None;
        Py_INCREF(result);
    } else {
        PyErr_NoMemory();
    }
    axis_free(&job->x);
    axis_free(&job->y);
    pair_free(&job->pair);
    free(job->levels);
    return result;
}

static PyObject *py_align_corners(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *src_obj, *dst_obj, *result = NULL;
    if (!PyArg_ParseTuple(args, "OO", &src_obj, &dst_obj))
        return NULL;
    Array src, dst = {0};
    if (array_get(src_obj, &src, 2, 'f', 0, "src") < 0)
        return NULL;
    Bilinear *job = calloc(1, sizeof(Bilinear));
    if (!job) {
        PyErr_NoMemory();
    } else if (array_get(dst_obj, &dst, 2, 'f', 1, "dst") == 0) {
        if (dst.strides[1] != sizeof(float))
            PyErr_SetString(PyExc_ValueError, "dst: rows of contiguous float32 expected");
        else
            result = run_bilinear(job, &src, &dst, 1, run_align_corners);
    }
    free(job);
    array_release(&src);
    array_release(&dst);
    return result;
}

static PyObject *py_colormap_linear(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *values_obj, *dst_obj, *result = NULL;
    Py_buffer lut;
    double lo, scale;
    if (!PyArg_ParseTuple(args, "OOy*dd", &values_obj, &dst_obj, &lut, &lo, &scale))
        return NULL;
    Array values = {0}, dst = {0};
    Bilinear *job = NULL;
    if (lut.len != 768) {
        PyErr_SetString(PyExc_ValueError, "lut: 256 x 3 bytes (B, G, R) expected");
    } else if (!isfinite(lo) || !isfinite(scale)) {
        PyErr_SetString(PyExc_ValueError, "lo and scale must be finite");
    } else if (array_get(values_obj, &values, 2, 'f', 0, "values") == 0 &&
               array_get(dst_obj, &dst, 3, 'B', 1, "dst") == 0) {
        if (dst.shape[2] != 3 || dst.strides[2] != 1 || dst.strides[1] < 3) {
            PyErr_SetString(PyExc_ValueError, "dst: an HxWx3 image with contiguous channels expected");
        } else if (!(job = calloc(1, sizeof(Bilinear)))) {
            PyErr_NoMemory();
        } else {
            const uint8_t *bgr = lut.buf;
            for (int i = 0; i < 256; i++) {
                job->words[i] = (uint32_t)bgr[3 * i] | (uint32_t)bgr[3 * i + 1] << 8 | (uint32_t)bgr[3 * i + 2] << 16;
                for (int c = 0; c < 3; c++)
                    job->channel_lut[c][i] = bgr[3 * i + c];
            }
            job->to_levels = 1;
            job->lo = (float)lo;
            job->scale = (float)scale;
            result = run_bilinear(job, &values, &dst, 0, run_colormap_linear);
            if (result) {
                Py_DECREF(result);
                result = PyLong_FromSsize_t(job->nonfinite);
            }
        }
    }
    free(job);
    array_release(&values);
    array_release(&dst);
    PyBuffer_Release(&lut);
    return result;
}

/* ------------------------------------------------------------------ module */

#if X86_DISPATCH
static int cpu_has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static int cpu_has_avx512(void)
{
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vbmi");
}
#endif

static PyObject *py_instruction_set(PyObject *self, PyObject *args)
{
    (void)self;
    const char *name = NULL;
    if (!PyArg_ParseTuple(args, "|z", &name))
        return NULL;
#if X86_DISPATCH
    const char *before = use_avx512 ? "avx512" : use_avx2 ? "avx2" : "baseline";
    if (name && strcmp(name, "baseline") == 0) {
        use_avx2 = use_avx512 = 0;
    } else if (name && strcmp(name, "avx2") == 0) {
        if (!cpu_has_avx2())
            return PyErr_Format(PyExc_ValueError, "this CPU has no AVX2 with FMA");
        use_avx2 = 1;
        use_avx512 = 0;
    } else if (name && strcmp(name, "avx512") == 0) {
        if (!cpu_has_avx512())
            return PyErr_Format(PyExc_ValueError, "this CPU has no AVX-512 VBMI (with AVX2 and FMA)");
        use_avx2 = use_avx512 = 1;
    } else if (name) {
        return PyErr_Format(PyExc_ValueError, "instruction set '%s' is not 'baseline', 'avx2' or 'avx512'", name);
    }
#else
    const char *before = "baseline";
    if (name && strcmp(name, "baseline") != 0)
        return PyErr_Format(PyExc_ValueError, "instruction set '%s': only 'baseline' here", name);
#endif
    return PyUnicode_FromString(before);
}

static PyMethodDef methods[] = {
    {"cubic_planes", py_cubic_planes, METH_VARARGS, "see kernels.py"},
    {"cubic_planes_nv12", py_cubic_planes_nv12, METH_VARARGS, "see kernels.py"},
    {"align_corners", py_align_corners, METH_VARARGS, "see kernels.py"},
    {"colormap_linear", py_colormap_linear, METH_VARARGS, "see kernels.py"},
    {"instruction_set", py_instruction_set, METH_VARARGS, "see kernels.py"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__kernels(void)
{
#if X86_DISPATCH
    use_avx2 = cpu_has_avx2();
    use_avx512 = cpu_has_avx512();
    interleaving_tables();
#endif
    return PyModule_Create(&module);
}
