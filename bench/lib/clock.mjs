/**
 * Monotonic microseconds. `process.hrtime` reads CLOCK_MONOTONIC, which is one clock for
 * every process on the machine, so a time stamped by the mock upstream can be subtracted
 * from a time read in the load generator.
 */
export function nowUs () {
  const [seconds, nanoseconds] = process.hrtime()
  return seconds * 1e6 + Math.floor(nanoseconds / 1e3)
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
