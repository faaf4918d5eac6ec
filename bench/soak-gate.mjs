/**
 * imagegate for the soak test: the built CLI's `main()` in a process of its own, started
 * by bench/soak.mjs with `--expose-gc`. Sent `'gc'` over IPC, it runs a full collection
 * and answers with its memory, so the RSS compared before and after the soak is live
 * memory rather than garbage that happened not to be collected yet.
 *
 * Usage: node --expose-gc bench/soak-gate.mjs <imagegate flags>
 */
import { main } from '../dist/cli.js'

process.on('message', (message) => {
  if (message !== 'gc') return
  // Twice: objects with finalizers (sockets, streams) are freed by the second pass.
  globalThis.gc?.()
  globalThis.gc?.()
  process.send?.({ gc: globalThis.gc !== undefined, memory: process.memoryUsage() })
})

process.exitCode = await main(process.argv.slice(2), process.env)
// The IPC channel would keep the process alive after the server closed.
process.disconnect?.()
