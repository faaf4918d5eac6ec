/**
 * Starts the built imagegate through its programmatic API (`startServer`), the way the
 * CLI does, for builds whose CLI cannot start yet. Closes on SIGTERM so that
 * `--cpu-prof` can write its profile.
 *
 * Usage: node bench/imagegate-server.mjs <upstream base URL> <cache dir>
 */
const [upstream, cacheDir] = process.argv.slice(2)
if (upstream === undefined || cacheDir === undefined) throw new TypeError('usage: imagegate-server.mjs <upstream> <cache dir>')

const { startServer } = await import('../dist/server.js')
const server = await startServer({
  upstream: new URL(upstream),
  cacheDirs: [cacheDir],
  port: 0,
  host: '127.0.0.1',
  publicUrl: undefined,
  upstreamApiKey: undefined,
  logLevel: 'warn'
})
process.send?.({ port: Number(new URL(server.url).port) })
process.on('SIGTERM', () => { server.close().then(() => process.exit(0)) })
