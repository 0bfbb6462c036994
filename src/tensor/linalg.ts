/**
 * Small dense linear algebra in float64: Householder QR (orthogonal init), a symmetric
 * eigensolver (Householder tridiagonalisation + implicit QR with Wilkinson shifts, O(n³) so a
 * 768 × 768 Gram matrix takes about a second) and singular values / left singular vectors through
 * the Gram matrix of the smaller side (HOSVD, multilinear spectra).
 *
 * Through the Gram matrix, singular values below about 1e-8·σ_max are lost in rounding (σ² sits
 * at 1e-16 relative). That is enough to count multilinear ranks with a 1e-6 tolerance; it is not
 * a tool for ill-conditioned least squares.
 */
import { ShapeError } from "../errors.ts";
import { type Dense, modeGram } from "./dense.ts";

function check2d(a: Dense, what: string): void {
  if (a.shape.length !== 2) throw new ShapeError(`${what}: expected a matrix, got shape [${a.shape.join(", ")}]`);
}

/**
 * Reduced QR of an [m, n] matrix: Q [m, k] with orthonormal columns, R [k, n] upper triangular,
 * k = min(m, n), A = Q R. Householder reflections with LAPACK's sign choice (no sign
 * normalisation: diag(R) may be negative; `orthogonal` in init.ts corrects it like PyTorch).
 */
export function qr(a: Dense): { q: Dense; r: Dense } {
  check2d(a, "qr");
  const [m, n] = a.shape;
  const k = Math.min(m, n);
  const w = Float64Array.from(a.data); // becomes R in its upper triangle
  const vs: Float64Array[] = [];
  for (let j = 0; j < k; j++) {
    // reflector v (unit) with (I − 2vvᵀ) x = α e_0 on rows j..m-1 of column j
    const len = m - j;
    const v = new Float64Array(len);
    let norm2 = 0;
    for (let i = 0; i < len; i++) {
      v[i] = w[(j + i) * n + j];
      norm2 += v[i] * v[i];
    }
    const norm = Math.sqrt(norm2);
    const alpha = v[0] >= 0 ? -norm : norm; // opposite sign to x0 avoids cancellation
    v[0] -= alpha;
    let vn2 = 0;
    for (let i = 0; i < len; i++) vn2 += v[i] * v[i];
    if (vn2 > 0) {
      const inv = 1 / Math.sqrt(vn2);
      for (let i = 0; i < len; i++) v[i] *= inv;
      for (let c = j; c < n; c++) {
        let s = 0;
        for (let i = 0; i < len; i++) s += v[i] * w[(j + i) * n + c];
        s *= 2;
        for (let i = 0; i < len; i++) w[(j + i) * n + c] -= s * v[i];
      }
    }
    vs.push(v);
  }
  const r = new Float64Array(k * n);
  for (let i = 0; i < k; i++) for (let c = i; c < n; c++) r[i * n + c] = w[i * n + c];
  // Q = H_0 H_1 … H_{k-1} applied to the first k columns of the identity, right to left
  const q = new Float64Array(m * k);
  for (let i = 0; i < k; i++) q[i * k + i] = 1;
  for (let j = k - 1; j >= 0; j--) {
    const v = vs[j];
    const len = m - j;
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let i = 0; i < len; i++) s += v[i] * q[(j + i) * k + c];
      if (s === 0) continue;
      s *= 2;
      for (let i = 0; i < len; i++) q[(j + i) * k + c] -= s * v[i];
    }
  }
  return { q: { shape: [m, k], data: q }, r: { shape: [k, n], data: r } };
}

/** Eigen-decomposition of a symmetric matrix; values sorted descending. */
export interface SymmetricEigen {
  values: Float64Array;
  /** [n, n], column k is the unit eigenvector of `values[k]` (absent with `vectors: false`). */
  vectors?: Dense;
}

/**
 * Eigenvalues (and optionally eigenvectors) of a symmetric [n, n] matrix. Only the lower
 * triangle's symmetry is assumed, not checked beyond the shape.
 */
export function symmetricEigen(a: Dense, opts: { vectors?: boolean } = {}): SymmetricEigen {
  check2d(a, "symmetricEigen");
  const n = a.shape[0];
  if (a.shape[1] !== n) throw new ShapeError(`symmetricEigen: matrix must be square, got [${a.shape.join(", ")}]`);
  const wantVectors = opts.vectors ?? true;
  const w = Float64Array.from(a.data);
  const qt = wantVectors ? new Float64Array(n * n) : undefined; // Qᵀ, so rotations touch contiguous rows
  if (qt) for (let i = 0; i < n; i++) qt[i * n + i] = 1;
  const d = new Float64Array(n);
  const e = new Float64Array(Math.max(n - 1, 0)); // e[i] = T[i, i+1]
  tridiagonalize(w, n, d, e, qt);
  tridiagonalQr(d, e, qt, n);
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => d[y] - d[x]);
  const values = Float64Array.from(order, (i) => d[i]);
  if (!qt) return { values };
  const vec = new Float64Array(n * n);
  for (let c = 0; c < n; c++) for (let r = 0; r < n; r++) vec[r * n + c] = qt[order[c] * n + r];
  return { values, vectors: { shape: [n, n], data: vec } };
}

/** A = Q T Qᵀ with T tridiagonal (d, e); Qᵀ accumulated into `qt` when given (row-major rows = Q's columns). */
function tridiagonalize(w: Float64Array, n: number, d: Float64Array, e: Float64Array, qt?: Float64Array): void {
  const v = new Float64Array(n);
  const p = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    const lo = k + 1;
    let norm2 = 0;
    for (let i = lo; i < n; i++) norm2 += w[i * n + k] * w[i * n + k];
    const x0 = w[lo * n + k];
    const norm = Math.sqrt(norm2);
    const alpha = x0 >= 0 ? -norm : norm;
    v.fill(0);
    for (let i = lo; i < n; i++) v[i] = w[i * n + k];
    v[lo] -= alpha;
    let vn2 = 0;
    for (let i = lo; i < n; i++) vn2 += v[i] * v[i];
    if (vn2 === 0 || norm2 - x0 * x0 === 0) continue; // column already reduced
    const inv = 1 / Math.sqrt(vn2);
    for (let i = lo; i < n; i++) v[i] *= inv;
    // H A H = A − 2 v wᵀ − 2 w vᵀ with p = A v, w = p − (vᵀp) v (H = I − 2vvᵀ, v unit)
    let vp = 0;
    for (let i = lo; i < n; i++) {
      let s = 0;
      const row = i * n;
      for (let c = lo; c < n; c++) s += w[row + c] * v[c];
      p[i] = s;
      vp += v[i] * s;
    }
    for (let i = lo; i < n; i++) p[i] -= vp * v[i];
    for (let i = lo; i < n; i++) {
      const row = i * n;
      const vi = 2 * v[i];
      const pi = 2 * p[i];
      for (let c = lo; c < n; c++) w[row + c] -= vi * p[c] + pi * v[c];
    }
    w[lo * n + k] = alpha;
    w[k * n + lo] = alpha;
    for (let i = lo + 1; i < n; i++) {
      w[i * n + k] = 0;
      w[k * n + i] = 0;
    }
    if (qt) {
      // Qᵀ ← H Qᵀ: rows lo.. of Qᵀ minus 2 v (vᵀ Qᵀ), all contiguous row operations
      p.fill(0);
      for (let i = lo; i < n; i++) {
        const vi = v[i];
        const row = i * n;
        for (let c = 0; c < n; c++) p[c] += vi * qt[row + c];
      }
      for (let i = lo; i < n; i++) {
        const vi = 2 * v[i];
        const row = i * n;
        for (let c = 0; c < n; c++) qt[row + c] -= vi * p[c];
      }
    }
  }
  for (let i = 0; i < n; i++) d[i] = w[i * n + i];
  for (let i = 0; i < n - 1; i++) e[i] = w[i * n + i + 1];
}

/** Implicit symmetric QR steps with Wilkinson shifts on (d, e) (Golub & Van Loan, alg. 8.3.2). */
function tridiagonalQr(d: Float64Array, e: Float64Array, qt: Float64Array | undefined, n: number): void {
  const eps = 2.220446049250313e-16;
  let iterations = 0;
  const maxIterations = 60 * Math.max(n, 1);
  for (;;) {
    for (let i = 0; i < n - 1; i++) {
      if (Math.abs(e[i]) <= eps * (Math.abs(d[i]) + Math.abs(d[i + 1]))) e[i] = 0;
    }
    let hi = n - 1;
    while (hi > 0 && e[hi - 1] === 0) hi--;
    if (hi === 0) return;
    let lo = hi - 1;
    while (lo > 0 && e[lo - 1] !== 0) lo--;
    if (++iterations > maxIterations) {
      throw new Error(`internal: symmetricEigen did not converge in ${maxIterations} QR steps (n = ${n})`);
    }
    const half = (d[hi - 1] - d[hi]) / 2;
    const b = e[hi - 1];
    const mu = d[hi] - (b * b) / (half + (half >= 0 ? 1 : -1) * Math.hypot(half, b));
    let x = d[lo] - mu;
    let z = e[lo];
    for (let k = lo; k < hi; k++) {
      // Givens G = [[c, s], [−s, c]] with Gᵀ [x, z] = [r, 0]; T ← Gᵀ T G on rows/cols k, k+1
      const r = Math.hypot(x, z);
      const c = r === 0 ? 1 : x / r;
      const s = r === 0 ? 0 : -z / r;
      if (k > lo) e[k - 1] = r;
      const dk = d[k];
      const dk1 = d[k + 1];
      const ek = e[k];
      d[k] = c * c * dk - 2 * c * s * ek + s * s * dk1;
      d[k + 1] = s * s * dk + 2 * c * s * ek + c * c * dk1;
      e[k] = c * s * (dk - dk1) + (c * c - s * s) * ek;
      if (k < hi - 1) {
        x = e[k];
        z = -s * e[k + 1]; // the bulge at (k, k+2)
        e[k + 1] *= c;
      }
      if (qt) {
        // Q ← Q G, i.e. rows k and k+1 of Qᵀ rotate
        const r0 = k * n;
        const r1 = r0 + n;
        for (let col = 0; col < n; col++) {
          const a0 = qt[r0 + col];
          const a1 = qt[r1 + col];
          qt[r0 + col] = c * a0 - s * a1;
          qt[r1 + col] = s * a0 + c * a1;
        }
      }
    }
  }
}

/** Singular values of an [m, n] matrix, descending, length min(m, n). */
export function singularValues(a: Dense): Float64Array {
  check2d(a, "singularValues");
  const [m, n] = a.shape;
  // the Gram matrix of the smaller side: A Aᵀ (mode 0) when m ≤ n, else Aᵀ A (mode 1)
  const g = modeGram(a, m <= n ? 0 : 1);
  const { values } = symmetricEigen(g, { vectors: false });
  return Float64Array.from(values, (v) => Math.sqrt(Math.max(v, 0)));
}

/**
 * The `k` leading left singular vectors U [m, k] and their singular values, through the
 * eigenvectors of A Aᵀ (m × m). Meant for unfoldings with few rows (HOSVD), k ≤ m.
 */
export function leftSingularVectors(a: Dense, k = a.shape[0]): { values: Float64Array; u: Dense } {
  check2d(a, "leftSingularVectors");
  const m = a.shape[0];
  if (!Number.isInteger(k) || k < 1 || k > m) {
    throw new ShapeError(`leftSingularVectors: k must be an integer in [1, ${m}], got ${k}`);
  }
  return leadingEigenvectors(modeGram(a, 0), k);
}

/** Leading `k` eigenpairs of a Gram matrix as singular values and vectors. */
export function leadingEigenvectors(gram: Dense, k: number): { values: Float64Array; u: Dense } {
  const m = gram.shape[0];
  const { values, vectors } = symmetricEigen(gram);
  const u = new Float64Array(m * k);
  for (let r = 0; r < m; r++) for (let c = 0; c < k; c++) u[r * k + c] = vectors!.data[r * m + c];
  return {
    values: Float64Array.from(values.subarray(0, k), (v) => Math.sqrt(Math.max(v, 0))),
    u: { shape: [m, k], data: u },
  };
}
