/**
 * The floor for a proxy that must look at events: node:http in front of an undici Pool,
 * event streams framed on blank lines and forwarded as the bytes read, one write per
 * upstream read (an event a read cut waits for its own rest); every other body piped.
 * No parsing, no rewriting, in its own process.
 *
 * Usage: node bench/floor-proxy.mjs <upstream origin>
 */
import http from 'node:http'
import { Pool } from 'undici'

const upstream = process.argv[2]
if (upstream === undefined) throw new TypeError('usage: floor-proxy.mjs <upstream origin>')

// One socket per stream, as with the other proxies (the memory scenario holds 1000 open).
const pool = new Pool(upstream, { connections: 4096, pipelining: 1, bodyTimeout: 0, headersTimeout: 0 })
const BLANK = Buffer.from('\n\n')

const server = http.createServer(async (req, res) => {
  const controller = new AbortController()
  res.once('close', () => { if (!res.writableFinished) controller.abort() })
  const headers = { ...req.headers }
  delete headers.host
  delete headers.connection
  try {
    const answer = await pool.request({ path: req.url, method: req.method, headers, body: req.method === 'GET' || req.method === 'HEAD' ? null : req, signal: controller.signal })
    const type = String(answer.headers['content-type'] ?? '')
    const out = {}
    for (const [key, value] of Object.entries(answer.headers)) if (key !== 'connection' && key !== 'keep-alive' && key !== 'transfer-encoding' && key !== 'content-length') out[key] = value
    if (!type.startsWith('text/event-stream')) {
      if (answer.headers['content-length'] !== undefined) out['content-length'] = answer.headers['content-length']
      res.writeHead(answer.statusCode, out)
      answer.body.pipe(res)
      return
    }
    res.writeHead(answer.statusCode, out)
    let tail
    for await (const read of answer.body) {
      const buf = tail === undefined ? read : Buffer.concat([tail, read])
      const end = buf.lastIndexOf(BLANK)
      if (end === -1) { tail = buf; continue }
      tail = end + 2 < buf.length ? buf.subarray(end + 2) : undefined
      if (!res.write(buf.subarray(0, end + 2))) await new Promise((resolve) => res.once('drain', resolve))
    }
    res.end(tail)
  } catch {
    if (!res.headersSent) res.writeHead(502)
    res.end()
  }
})
server.keepAliveTimeout = 120_000
server.listen(0, '127.0.0.1', () => { process.send?.({ port: server.address().port }) })
process.on('SIGTERM', () => { server.close(); pool.close().then(() => process.exit(0)) })
process.on('disconnect', () => process.exit(0))
