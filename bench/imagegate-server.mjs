/**
 * Starts the built imagegate through its programmatic API (`resolveOptions` and
 * `startServer`), the way the CLI does, for builds whose CLI cannot start yet. Takes the
 * CLI's flags. Closes on SIGTERM so that `--cpu-prof` can write its profile.
 *
 * Usage: node bench/imagegate-server.mjs --upstream URL --cache-dir DIR …
 */
import os from 'node:os'

const { resolveOptions } = await import('../dist/config/index.js')
const { startServer } = await import('../dist/server.js')
const resolved = resolveOptions({ argv: process.argv.slice(2), env: {}, cwd: process.cwd(), homedir: os.homedir() })
if (resolved.kind !== 'run') throw new TypeError(`usage: imagegate-server.mjs <imagegate flags>\n${resolved.text}`)
const server = await startServer(resolved.options, { warnings: resolved.warnings })
process.send?.({ port: Number(new URL(server.url).port) })
process.on('SIGTERM', () => { server.close().then(() => process.exit(0)) })
