/** Nearest-rank percentile of an unsorted numeric array (`p` in 0..100). */
export function percentile (values, p) {
  if (values.length === 0) return NaN
  const sorted = Float64Array.from(values).sort()
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]
}

/** Median of the finite values; NaN when there are none. */
export function median (values) {
  const finite = values.filter(Number.isFinite)
  if (finite.length === 0) return NaN
  const sorted = finite.sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}
