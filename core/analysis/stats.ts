/**
 * The statistics an analysis uses: percentiles of latency samples, the Mann-Whitney U test (as Kayenta
 * compares a canary's samples with the baseline's), and Kayenta-style scoring over weighted metrics.
 */

/**
 * The `q`-th percentile (0-100) of `values`, linearly interpolated between the closest ranks (numpy's
 * default). `NaN` for no values. Exact: the two ranks are found by selection (quickselect, O(n)), not
 * by sorting every value.
 */
export function percentile(values: readonly number[] | Float64Array, q: number): number {
  if (values.length === 0) return Number.NaN;
  return percentileInPlace(Float64Array.from(values), values.length, q);
}

/**
 * {@link percentile} of the first `n` values of `a`, which it reorders (no copy): for a caller that owns
 * a scratch array. `NaN` for `n` = 0.
 */
export function percentileInPlace(a: Float64Array, n: number, q: number): number {
  if (n === 0) return Number.NaN;
  const pos = (Math.min(100, Math.max(0, q)) / 100) * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const at = select(a, n, lo);
  if (hi === lo) return at;
  // after the selection, every value right of `lo` is >= a[lo]: the next rank is their minimum
  let next = a[lo + 1]!;
  for (let i = lo + 2; i < n; i++) if (a[i]! < next) next = a[i]!;
  return at + (next - at) * (pos - lo);
}

/** The `k`-th smallest (0-based) of the first `n` values of `a`, reordering them around it (Hoare's quickselect). */
function select(a: Float64Array, n: number, k: number): number {
  let left = 0;
  let right = n - 1;
  while (right > left) {
    // median of three as the pivot: sorted or constant input stays linear
    const mid = (left + right) >>> 1;
    const x = a[left]!;
    const y = a[mid]!;
    const z = a[right]!;
    const pivot = Math.max(Math.min(x, y), Math.min(Math.max(x, y), z));
    let i = left;
    let j = right;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) right = j;
    else if (k >= i) left = i;
    else return a[k]!;
  }
  return a[k]!;
}

/** Complementary error function (Numerical Recipes' Chebyshev fit; relative error < 1.2e-7). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** P(Z > z) for a standard normal Z. */
export function normalSf(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}

/** The result of {@link mannWhitneyU}. */
export interface MannWhitneyResult {
  /** U of the first sample (`a`): how often a value of `a` exceeds one of `b` (ties count half). */
  readonly u: number;
  /** The normal approximation's z (with tie and continuity corrections), for the larger U. */
  readonly z: number;
  /** Two-sided p-value; `NaN` when a sample is empty or every value is tied. */
  readonly p: number;
  /** Whether `a` tends to be larger than `b` (U of `a` above its mean). */
  readonly aHigher: boolean;
}

/**
 * Two-sided Mann-Whitney U test with the normal approximation, the tie correction and the continuity
 * correction: the same numbers as scipy's `mannwhitneyu(a, b, method='asymptotic')`.
 */
export function mannWhitneyU(a: readonly number[], b: readonly number[]): MannWhitneyResult {
  const n1 = a.length;
  const n2 = b.length;
  if (n1 === 0 || n2 === 0) return { u: Number.NaN, z: Number.NaN, p: Number.NaN, aHigher: false };
  const all = [...a.map((v) => ({ v, first: true })), ...b.map((v) => ({ v, first: false }))].sort((x, y) => x.v - y.v);
  const n = n1 + n2;
  let rankSumA = 0;
  let tieTerm = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && all[j + 1]!.v === all[i]!.v) j++;
    const rank = (i + j + 2) / 2; // ranks are 1-based: (i+1 + j+1) / 2
    const t = j - i + 1;
    tieTerm += t * t * t - t;
    for (let k = i; k <= j; k++) if (all[k]!.first) rankSumA += rank;
    i = j + 1;
  }
  const u1 = rankSumA - (n1 * (n1 + 1)) / 2;
  const u2 = n1 * n2 - u1;
  const mu = (n1 * n2) / 2;
  const sigma = Math.sqrt(((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1))));
  if (!(sigma > 0)) return { u: u1, z: Number.NaN, p: Number.NaN, aHigher: false };
  const z = (Math.max(u1, u2) - mu - 0.5) / sigma;
  return { u: u1, z, p: Math.min(1, 2 * normalSf(z)), aHigher: u1 > mu };
}

/** One metric's part in a Kayenta-style score. */
export interface ScoredMetric {
  readonly weight: number;
  readonly passed: boolean;
}

/**
 * Kayenta's score: the weighted share (0-100) of the judged metrics that passed. `NaN` when no metric
 * could be judged (all inconclusive or errors).
 */
export function kayentaScore(metrics: readonly ScoredMetric[]): number {
  const total = metrics.reduce((s, m) => s + m.weight, 0);
  if (total <= 0) return Number.NaN;
  return (100 * metrics.reduce((s, m) => s + (m.passed ? m.weight : 0), 0)) / total;
}
