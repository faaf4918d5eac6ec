/**
 * The Node baseline: @fastify/http-proxy in front of the mock upstream, forwarding
 * everything untouched (no SSE parsing, no rewriting), in its own process.
 *
 * Usage: node bench/fastify-proxy.mjs <upstream origin>
 */
import Fastify from 'fastify'
import proxy from '@fastify/http-proxy'

const upstream = process.argv[2]
if (upstream === undefined) throw new TypeError('usage: fastify-proxy.mjs <upstream origin>')

const app = Fastify({ logger: false, bodyLimit: 50 * 1024 * 1024 })
await app.register(proxy, {
  upstream,
  // reply-from pools 128 upstream sockets by default; the memory scenario holds 1000
  // streams open at once, so every stream gets its own socket as with the other proxies.
  undici: { connections: 4096, pipelining: 1 }
})
await app.listen({ port: 0, host: '127.0.0.1' })
process.send?.({ port: app.server.address().port })
process.on('SIGTERM', () => { app.close().then(() => process.exit(0)) })
process.on('disconnect', () => process.exit(0))
