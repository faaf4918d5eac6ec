/**
 * A stand-in for hermes-agent's api_server, run in its own process. `POST
 * …/chat/completions` streams hermes-shaped chunks and `POST …/responses` hermes-shaped
 * Responses API events; the request body's `bench` object says how (the proxies forward
 * bodies untouched, so every path gets the same stream):
 *
 * - `mode: 'paced'`: the opening events (role chunk, or `response.created` and
 *   `response.output_item.added`) and the first delta at once, then one delta every
 *   `paceMs`, then the closing events (usage chunk and `[DONE]`, or the three `*.done`
 *   and `response.completed` events carrying the whole text).
 * - `mode: 'fast'`: as fast as the socket takes them, `batch` events per write.
 * - `mode: 'hold'` (chat only): role chunk and one delta, then nothing until the parent
 *   sends `'release'` over IPC (idle open streams for the memory scenario).
 *
 * `events` is the number of content deltas.
 *
 * Usage: node bench/mock-upstream.mjs <absolute path of the PNG the text references>
 */
import http from 'node:http'
import { DONE_EVENT, contentEvent, contentSource, finalEvent, roleEvent } from './lib/hermes.mjs'
import { createResponsesWriter, responsesSource } from './lib/responses.mjs'

const imagePath = process.argv[2]
if (imagePath === undefined) throw new TypeError('usage: mock-upstream.mjs <image path>')

const DEFAULTS = { mode: 'paced', events: 40, paceMs: 20, imageEvery: 40, batch: 16 }
const held = new Set()

function paced (res, options, answer) {
  let i = 1
  let timer
  const tick = () => {
    if (i >= options.events) return res.end(answer.finish())
    res.write(answer.delta(i++))
    timer = setTimeout(tick, options.paceMs)
  }
  res.on('close', () => clearTimeout(timer))
  if (options.paceMs === 0) {
    while (i < options.events) res.write(answer.delta(i++))
    return res.end(answer.finish())
  }
  timer = setTimeout(tick, options.paceMs)
}

async function fast (res, options, answer) {
  let closed = false
  res.on('close', () => { closed = true })
  // eslint-disable-next-line no-unmodified-loop-condition -- set by the 'close' listener, which runs while a write waits for 'drain'
  for (let i = 1; i < options.events && !closed;) {
    let text = ''
    for (const end = Math.min(options.events, i + options.batch); i < end; i++) text += answer.delta(i)
    if (!res.write(text)) await new Promise((resolve) => { res.once('drain', resolve).once('close', resolve) })
  }
  if (!closed) res.end(answer.finish())
}

/** Chat completion chunks: `delta(i)` is content delta i, `finish()` the usage chunk and [DONE]. */
function chatAnswer (options) {
  const next = contentSource(imagePath, options.imageEvery)
  return {
    open: () => roleEvent() + contentEvent(next(0)),
    delta: (i) => contentEvent(next(i)),
    finish: () => finalEvent(options.events) + DONE_EVENT
  }
}

/** Responses API events: `delta(i)` is `response.output_text.delta` i. */
function responsesAnswer (options) {
  const next = responsesSource(imagePath, options.imageEvery)
  const writer = createResponsesWriter()
  return {
    open: () => writer.created() + writer.delta(next(0)),
    delta: (i) => writer.delta(next(i)),
    finish: () => writer.finish()
  }
}

function stream (res, options, answer) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  res.write(answer.open())
  if (options.mode === 'hold') {
    held.add(res)
    res.on('close', () => held.delete(res))
  } else if (options.mode === 'fast') {
    fast(res, options, answer).catch(() => res.destroy())
  } else {
    paced(res, options, answer)
  }
}

const server = http.createServer({ keepAliveTimeout: 120_000, headersTimeout: 0, requestTimeout: 0 }, (req, res) => {
  const chunks = []
  req.on('data', (chunk) => chunks.push(chunk))
  req.on('end', () => {
    const chat = req.url.endsWith('/chat/completions')
    if (req.method !== 'POST' || !(chat || req.url.endsWith('/responses'))) {
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
    if (!chat && options.mode === 'hold') {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"error": {"message": "hold is for chat only"}}')
      return
    }
    stream(res, options, chat ? chatAnswer(options) : responsesAnswer(options))
  })
})
// Upstream keep-alive must outlast the proxies' idle pools (nginx keeps 60 s), or a
// proxy may reuse a socket the mock is closing and answer 502.
server.keepAliveTimeout = 120_000

process.on('message', (message) => {
  if (message === 'release') for (const res of held) res.end(finalEvent(1) + DONE_EVENT)
})
process.on('disconnect', () => process.exit(0))

server.listen(0, '127.0.0.1', () => {
  process.send?.({ port: server.address().port })
})
