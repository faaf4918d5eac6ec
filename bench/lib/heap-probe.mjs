/**
 * Preloaded (`node --import`) into the Node proxies under test, imagegate and
 * @fastify/http-proxy, so the benchmark can see inside V8 without changing the proxy:
 *
 * - a PerformanceObserver counts garbage collection pauses (count, total, and how many
 *   were at least 1, 5 and 10 ms) since the process started, and the longest pause
 *   since the previous read;
 * - on SIGUSR2 it writes those numbers, V8's heap spaces (the young generation, "new
 *   space", above all) and `process.memoryUsage()` as JSON to
 *   `$BENCH_PROBE_DIR/probe-<pid>.json` (written to a temporary name, then renamed, so a
 *   reader never sees half a file). When `$BENCH_PROBE_DIR/gc-<pid>` exists, it first
 *   runs two full collections (objects with finalizers, sockets among them, are freed by
 *   the second), so `heapUsed` is live memory; V8's `gc()` is only exposed then.
 *
 * It does nothing else: one observer callback per collection and, when asked, one file.
 */
import fs from 'node:fs'
import path from 'node:path'
import { PerformanceObserver } from 'node:perf_hooks'
import v8 from 'node:v8'
import { runInNewContext } from 'node:vm'

const dir = process.env.BENCH_PROBE_DIR
// perf_hooks.constants.NODE_PERFORMANCE_GC_*
const KINDS = { 1: 'minor', 4: 'major', 8: 'incremental', 16: 'weakcb' }

const gc = { count: 0, totalMs: 0, maxMs: 0, atLeast1Ms: 0, atLeast5Ms: 0, atLeast10Ms: 0, byKind: {} }

new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const ms = entry.duration
    gc.count++
    gc.totalMs += ms
    if (ms > gc.maxMs) gc.maxMs = ms
    if (ms >= 1) gc.atLeast1Ms++
    if (ms >= 5) gc.atLeast5Ms++
    if (ms >= 10) gc.atLeast10Ms++
    const kind = KINDS[entry.detail?.kind] ?? 'other'
    gc.byKind[kind] = (gc.byKind[kind] ?? 0) + 1
  }
}).observe({ entryTypes: ['gc'] })

if (dir !== undefined) {
  let fullGc
  process.on('SIGUSR2', () => {
    const marker = path.join(dir, `gc-${process.pid}`)
    if (fs.existsSync(marker)) {
      fs.rmSync(marker)
      if (fullGc === undefined) {
        v8.setFlagsFromString('--expose-gc')
        fullGc = runInNewContext('gc')
      }
      fullGc()
      fullGc()
    }
    const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, { size: s.space_size, used: s.space_used_size }]))
    const file = path.join(dir, `probe-${process.pid}.json`)
    fs.writeFileSync(file + '.tmp', JSON.stringify({ gc: { ...gc, byKind: { ...gc.byKind } }, spaces, memory: process.memoryUsage() }))
    fs.renameSync(file + '.tmp', file)
    // Counts are cumulative (the reader subtracts); the longest pause is per read.
    gc.maxMs = 0
  })
}
