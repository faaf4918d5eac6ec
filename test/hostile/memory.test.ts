// Memory while 50 MB of hostile upstream input streams through a whole imagegate. The
// gate, the upstream and the client share this process, so the client keeps nothing
// but counts; whatever the heap keeps is imagegate's.
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import { IMAGE_PATH } from '../fixtures/hermes.js'
import { open, responseOf } from '../fixtures/http.js'
import { CHAT, chunk } from '../fixtures/chat.js'
import { drained } from '../fixtures/mock-upstream.js'
import type { MockHandler } from '../fixtures/mock-upstream.js'
import { startProxy } from '../fixtures/proxy.js'
import { watchWarnings } from '../fixtures/warnings.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const MB = 1024 * 1024
const TOTAL = 50 * MB
/**
 * The documented bounds. What one stream may hold by design: the event being parsed (at
 * most DEFAULT_MAX_EVENT_SIZE characters; here at most 1 MiB) and, per choice (at most
 * 64), one candidate reference of at most DEFAULT_MAX_HOLD (4096) characters: a few MiB.
 * The live heap is sampled after a forced GC while the stream runs; RSS also holds
 * garbage not yet collected and the socket buffers of all three parties.
 */
const LIVE_HEAP_GROWTH = 16 * MB
const RETAINED_HEAP_GROWTH = 2 * MB
const PEAK_RSS_GROWTH = 96 * MB

/** One round of hostile events: every kind of text imagegate has to hold or parse. */
function hostileRound (round: number): string[] {
  const events: string[] = []
  // 64 choices, each holding a candidate that grows to the hold bound before it is let go.
  for (let index = 0; index < 64; index++) events.push(chunk({ content: `see ![x${round}](/root/.hermes/cache/` }, { index }))
  for (let step = 0; step < 8; step++) {
    for (let index = 0; index < 64; index++) events.push(chunk({ content: 'a/'.repeat(300) }, { index }))
  }
  // A bare MEDIA path running into the hold bound, and one that names the real image.
  events.push(chunk({ content: `MEDIA:/${'m'.repeat(5000)}` }), chunk({ content: ` MEDIA:${IMAGE_PATH} ` }))
  // Code that toggles state, escapes and near-miss syntax.
  events.push(chunk({ content: '```\n![in](code)\n```\n`x` \\![no](x) ![a] (b) !!!! MEDIA MEDIA:\n' }))
  // Lines that are no chunk at all, or no JSON at all.
  events.push(`data: {not json ${'j'.repeat(64 * 1024)}\n\n`, 'data: [1, 2, 3]\n\n', `data: "${'s'.repeat(1024)}"\n\n`)
  events.push(`: ${'c'.repeat(16 * 1024)}\n\n`, 'retry: 10\n\n', 'foo: bar\n\n', `id: ${round}\n\n`)
  // A tool event as large as a base64 image, in CRLF.
  events.push(`event: hermes.tool.progress\r\ndata: {"blob": "${'B'.repeat(MB)}"}\r\n\r\n`)
  return events
}

/** Streams hostile rounds until `total` bytes went out, honouring backpressure. */
function hostileUpstream (total: number): MockHandler {
  return async (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    let sent = 0
    for (let round = 0; sent < total && !res.destroyed; round++) {
      const text = hostileRound(round).join('')
      sent += Buffer.byteLength(text)
      if (!res.write(text)) await drained(res)
    }
    if (!res.destroyed) res.end('data: [DONE]\n\n')
  }
}

t.test(`streaming ${TOTAL / MB} MB of hostile input keeps memory bounded`, { timeout: 120_000 }, async (t) => {
  const warnings = watchWarnings(t)
  // info: one debug line per reference would be the test's own garbage.
  const { upstream, gate } = await startProxy(t, { options: { logLevel: 'info' } })

  // A first short answer, so lazily built parts of the server exist before the baseline.
  upstream.handle(hostileUpstream(MB))
  await drain(gate.url)
  gc()
  const base = process.memoryUsage()

  let liveHeap = 0
  let peakRss = 0
  let samples = 0
  const sampleRss = (): void => { peakRss = Math.max(peakRss, process.memoryUsage.rss()) }
  const sampler = setInterval(() => {
    gc()
    liveHeap = Math.max(liveHeap, process.memoryUsage().heapUsed)
    samples++
  }, 100)
  t.teardown(() => clearInterval(sampler))

  upstream.handle(hostileUpstream(TOTAL))
  const { bytes, last } = await drain(gate.url, sampleRss)
  clearInterval(sampler)
  gc()
  const after = process.memoryUsage()

  const mib = (n: number): string => `${(n / MB).toFixed(1)} MiB`
  t.ok(bytes > TOTAL * 0.9, `the client received the stream (${mib(bytes)})`)
  t.equal(last, 'data: [DONE]', 'and its end')
  t.ok(samples >= 5, `the live heap was sampled while the stream ran (${samples} times)`)
  t.ok(liveHeap - base.heapUsed < LIVE_HEAP_GROWTH, `live heap growth ${mib(liveHeap - base.heapUsed)} < ${mib(LIVE_HEAP_GROWTH)}`)
  t.ok(after.heapUsed - base.heapUsed < RETAINED_HEAP_GROWTH, `heap kept after GC ${mib(after.heapUsed - base.heapUsed)} < ${mib(RETAINED_HEAP_GROWTH)}`)
  t.ok(peakRss - base.rss < PEAK_RSS_GROWTH, `peak RSS growth ${mib(peakRss - base.rss)} < ${mib(PEAK_RSS_GROWTH)}`)
  // The upstream waited for a drain hundreds of times on one response; none left a listener.
  t.same(warnings(), [], 'no process warning (a listener left per write would be one)')
})

/** Reads a streamed answer, keeping only its size and its last line. */
async function drain (base: string, onData?: () => void): Promise<{ bytes: number, last: string }> {
  const req = open(base, { method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' } })
  req.end(CHAT)
  const res = await responseOf(req)
  let bytes = 0
  let tail = ''
  for await (const piece of res as AsyncIterable<Buffer>) {
    bytes += piece.length
    tail = (tail + piece.toString('latin1')).slice(-256)
    onData?.()
  }
  const lines = tail.split('\n').filter((line) => line.length > 0)
  return { bytes, last: lines.at(-1) ?? '' }
}

t.test('inline data: images being captured are bounded per stream, not per choice', async (t) => {
  const warnings = watchWarnings(t)
  const limit = 256 * 1024
  const { upstream, gate } = await startProxy(t, { options: { logLevel: 'info', dataImageMaxBytes: limit } })
  // Each of 64 choices opens an inline PNG and sends just under the limit of base64.
  const body = Math.floor(limit / 3) * 4 - 1024
  upstream.handle(async (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    for (let index = 0; index < 64; index++) res.write(chunk({ content: '![i](data:image/png;base64,iVBORw0KGgo' }, { index }))
    for (let sent = 0; sent < body; sent += 4096) {
      const text = Array.from({ length: 64 }, (_, index) => chunk({ content: 'A'.repeat(4096) }, { index })).join('')
      if (!res.write(text)) await drained(res)
    }
    // Everything is held now; the upstream waits before it ends the images.
    await new Promise((resolve) => setTimeout(resolve, 300))
    res.end('data: [DONE]\n\n')
  })
  gc()
  const base = process.memoryUsage().heapUsed
  let live = 0
  const sampler = setInterval(() => {
    gc()
    live = Math.max(live, process.memoryUsage().heapUsed)
  }, 50)
  t.teardown(() => clearInterval(sampler))
  await drain(gate.url)
  clearInterval(sampler)
  const held = 64 * body
  t.ok(live - base < 4 * MB, `live heap growth ${((live - base) / MB).toFixed(1)} MiB while 64 choices sent ${(held / MB).toFixed(1)} MiB of unfinished images; bound 4 MiB`)
  t.same(warnings(), [], 'no process warning')
})
