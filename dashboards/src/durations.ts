/**
 * Prometheus durations (`30s`, `5m`, `1h`, `3d`) as seconds and back, and
 * divided by a time scale: the alerting integration test runs the same rules
 * and SLO windows 60 times faster (minutes become seconds).
 */

const units = [["d", 86_400], ["h", 3_600], ["m", 60], ["s", 1]] as const

/** The seconds of a duration of one unit, such as `5m` or `3d`. */
export const seconds = (duration: string): number => {
  const match = /^(\d+)([smhd])$/.exec(duration)
  if (match === null) throw new Error(`not a duration of one unit: ${duration}`)
  return Number(match[1]) * units.find(([unit]) => unit === match[2])![1]
}

/** `total` seconds in the largest unit that divides them (`3600` → `1h`, `4320` → `72m`). */
export const duration = (total: number): string => {
  if (!Number.isInteger(total) || total <= 0) throw new Error(`not a whole number of seconds: ${total}`)
  const [unit, length] = units.find(([, size]) => total % size === 0)!
  return `${total / length}${unit}`
}

/** `value` divided by `scale`: `scaled("1h", 60)` is `1m`. */
export const scaled = (value: string, scale: number): string => duration(seconds(value) / scale)
