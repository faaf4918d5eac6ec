import t from 'tap'
import fc from 'fast-check'
import { createEventStream } from '../../src/sse/event-stream.js'
import type { EventHandler } from '../../src/sse/event-stream.js'
import { serializeEvent } from '../../src/sse/serialize.js'

/** A handler that forwards every event as it came, like the chat handler's fast path. */
function echo (): EventHandler & { flushed: number } {
  let done = false
  const handler = {
    flushed: 0,
    onEvent (event: { event?: string | undefined, id?: string | undefined, data: string }, out: string[]) {
      out.push(serializeEvent(event))
      if (event.data === '[DONE]') done = true
    },
    flush () { handler.flushed++ },
    get done () { return done },
    complete: false
  }
  return handler
}

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text)

function run (chunks: Uint8Array[], maxEventSize?: number): { out: string[], handler: ReturnType<typeof echo>, overflowed: boolean } {
  const handler = echo()
  const stream = createEventStream(handler, maxEventSize !== undefined ? { maxEventSize } : {})
  const out: string[] = []
  for (const chunk of chunks) out.push(...stream.feed(chunk))
  out.push(...stream.end())
  return { out, handler, overflowed: stream.overflowed }
}

t.test('events, comments and retry lines come out in order, one per element', async (t) => {
  const input = 'data: {"a": 1}\n\nevent: hermes.tool.progress\ndata: {"b": 2}\n\n: keepalive\n\nretry: 1500\n\nid: 7\ndata: x\n\n'
  const { out } = run([bytes(input)])
  t.same(out, ['data: {"a": 1}\n\n', 'event: hermes.tool.progress\ndata: {"b": 2}\n\n', ': keepalive\n\n', 'retry: 1500\n\n', 'id: 7\ndata: x\n\n'], 'each event as its own write')
})

t.test('line endings, BOM and multi-line data', async (t) => {
  const { out } = run([bytes('\ufeffdata: a\r\ndata: b\r\n\r\ndata: c\rdata: d\r\rdata: e\n\n')])
  t.same(out, ['data: a\ndata: b\n\n', 'data: c\ndata: d\n\n', 'data: e\n\n'], 'CRLF, CR and LF all end lines; the BOM is dropped')
})

t.test('lines the parser does not know still reach the client', async (t) => {
  const { out } = run([bytes('foo: bar\nretry: soon\ndata: x\n\n')])
  t.same(out, ['foo: bar\n\n', 'retry: soon\n\n', 'data: x\n\n'], 'unknown field and bad retry forwarded as their own blocks')
})

t.test('nothing after [DONE] is forwarded', async (t) => {
  const { out, handler } = run([bytes('data: [DONE]\n\ndata: late\n\n: c\n\n')])
  t.same(out, ['data: [DONE]\n\n'], 'only the terminal event')
  t.equal(handler.flushed, 0, 'no flush after done')
})

t.test('a 10 MB single line passes through; past the cap the stream reports overflow', async (t) => {
  const big = 'x'.repeat(10 * 1024 * 1024)
  const { out } = run([bytes(`data: ${big}\n\n`)])
  t.equal(out.length, 1, 'one event')
  t.equal(out[0]!.length, big.length + 8, 'the whole line came through')
  const capped = run([bytes(`data: ${'y'.repeat(5000)}`), bytes('\n\n')], 1000)
  t.ok(capped.overflowed, 'overflow reported')
  t.same(capped.out, [], 'nothing partial is sent')
  t.equal(capped.handler.flushed, 1, 'held text is still flushed at the end')
})

t.test('raw byte splits anywhere, even inside UTF-8 sequences, give the same events', async (t) => {
  const input = bytes('data: {"c": "🍎 é — \\u2014"}\r\n\r\n: keepalive\n\nevent: x\ndata: ünïcödé\n\ndata: [DONE]\n\n')
  const expected = run([input]).out
  fc.assert(fc.property(fc.uniqueArray(fc.integer({ min: 1, max: input.length - 1 }), { maxLength: 20 }), (cuts) => {
    const sorted = [...cuts].sort((a, b) => a - b)
    const chunks: Uint8Array[] = []
    let from = 0
    for (const cut of sorted) { chunks.push(input.subarray(from, cut)); from = cut }
    chunks.push(input.subarray(from))
    const { out } = run(chunks)
    return JSON.stringify(out) === JSON.stringify(expected)
  }), { numRuns: 2000 })
  t.pass('2000 byte splits agree')
  t.same(run([...input].map((b) => Uint8Array.of(b))).out, expected, 'one byte at a time')
})
