/**
 * A stand-in for hermes-agent's api_server, run in its own process. `POST
 * …/chat/completions` streams hermes-shaped chunks; the request body's `bench` object says
 * how (the proxies forward bodies untouched, so every path gets the same stream):
 *
 * - `mode: 'paced'`: role chunk and the first delta at once, then one delta every
 *   `paceMs`, then the usage chunk and `[DONE]`.
 * - `mode: 'fast'`: as fast as the socket takes them, `batch` events per write.
 * - `mode: 'hold'`: role chunk and one delta, then nothing until the parent sends
 *   `'release'` over IPC (idle open streams for the memory scenario).
 *
 * Usage: node bench/mock-upstream.mjs <absolute path of the PNG the text references>
 */
import http from 'node:http'
import { DONE_EVENT, contentEvent, contentSource, finalEvent, roleEvent } from './lib/hermes.mjs'

const imagePath = process.argv[2]
if (imagePath === undefined) throw new TypeError('usage: mock-upstream.mjs <image path>')

const DEFAULTS = { mode: 'paced', events: 40, paceMs: 20, imageEvery: 40, batch: 16 }
const held = new Set()

function finish (res, count) {
  res.end(finalEvent(count) + DONE_EVENT)
}

function paced (res, options, next) {
  let i = 1
  let timer
  const tick = () => {
    if (i >= options.events) return finish(res, options.events)
    res.write(contentEvent(next(i++)))
    timer = setTimeout(tick, options.paceMs)
  }
  res.on('close', () => clearTimeout(timer))
  if (options.paceMs === 0) {
    while (i < options.events) res.write(contentEvent(next(i++)))
    return finish(res, options.events)
  }
  timer = setTimeout(tick, options.paceMs)
}

async function fast (res, options, next) {
  let closed = false
  res.on('close', () => { closed = true })
  for (let i = 1; i < options.events && !closed;) {
    let text = ''
    for (const end = Math.min(options.events, i + options.batch); i < end; i++) text += contentEvent(next(i))
    if (!res.write(text)) await new Promise((resolve) => { res.once('drain', resolve).once('close', resolve) })
  }
  if (!closed) finish(res, options.events)
}

function stream (res, options) {
  const next = contentSource(imagePath, options.imageEvery)
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  res.write(roleEvent())
  res.write(contentEvent(next(0)))
  if (options.mode === 'hold') {
    held.add(res)
    res.on('close', () => held.delete(res))
  } else if (options.mode === 'fast') {
    fast(res, options, next).catch(() => res.destroy())
  } else {
    paced(res, options, next)
  }
}

const server = http.createServer({ keepAliveTimeout: 120_000, headersTimeout: 0, requestTimeout: 0 }, (req, res) => {
  const chunks = []
  req.on('data', (chunk) => chunks.push(chunk))
  req.on('end', () => {
    if (req.method !== 'POST' || !req.url.endsWith('/chat/completions')) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error": {"message": "not found"}}')
      return
    }
    let options
    try {
      options = { ...DEFAULTS, ...JSON.parse(Buffer.concat(chunks).toString('utf8')).bench }
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"error": {"message": "bad json"}}')
      return
    }
    stream(res, options)
  })
})
// Upstream keep-alive must outlast the proxies' idle pools (nginx keeps 60 s), or a
// proxy may reuse a socket the mock is closing and answer 502.
server.keepAliveTimeout = 120_000

process.on('message', (message) => {
  if (message === 'release') for (const res of held) finish(res, 1)
})
process.on('disconnect', () => process.exit(0))

server.listen(0, '127.0.0.1', () => {
  process.send?.({ port: server.address().port })
})
