import t from 'tap'
import fc from 'fast-check'
import type { EventSourceMessage } from 'eventsource-parser'
import { createEventStream } from '../../src/sse/event-stream.js'
import type { EventHandler } from '../../src/sse/event-stream.js'

/**
 * A handler that looks at events holding `x` (`mayChange`), records what it parsed, and
 * changes events whose data is `change` (with one event inserted before).
 */
function recorder (options: { complete?: boolean, held?: boolean } = {}): EventHandler & { seen: EventSourceMessage[], flushed: number } {
  let done = false
  const handler = {
    seen: [] as EventSourceMessage[],
    flushed: 0,
    mayChange: ({ buf, start, end }: { buf: Buffer, start: number, end: number }) => buf.subarray(start, end).includes('x') || buf.subarray(start, end).includes('DONE') || buf.subarray(start, end).includes('change'),
    onEvent (event: EventSourceMessage, _raw: string, before: string[]) {
      handler.seen.push(event)
      if (event.data === '[DONE]') done = true
      if (event.data !== 'change') return undefined
      before.push('data: inserted\n\n')
      return 'data: changed\n\n'
    },
    flush (out: string[]) {
      handler.flushed++
      if (options.held === true) out.push('data: held\n\n')
    },
    get done () { return done },
    complete: options.complete ?? false
  }
  return handler
}

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text)

function run (chunks: Uint8Array[], options: { maxEventSize?: number, complete?: boolean, held?: boolean } = {}): { writes: Buffer[], text: string, handler: ReturnType<typeof recorder>, overflowed: boolean } {
  const handler = recorder(options)
  const stream = createEventStream(handler, options.maxEventSize !== undefined ? { maxEventSize: options.maxEventSize } : {})
  const writes: Buffer[] = []
  for (const chunk of chunks) writes.push(stream.feed(chunk))
  writes.push(stream.end())
  return { writes, text: Buffer.concat(writes).toString(), handler, overflowed: stream.overflowed }
}

const splitAt = (input: Uint8Array, cuts: number[]): Uint8Array[] => {
  const sorted = [...new Set(cuts)].sort((a, b) => a - b)
  const chunks: Uint8Array[] = []
  let from = 0
  for (const cut of sorted) { chunks.push(input.subarray(from, cut)); from = cut }
  chunks.push(input.subarray(from))
  return chunks
}

t.test('events, comments, retry and unknown lines go out as the exact bytes, one buffer per read', async (t) => {
  const input = 'data: {"a":1}\n\nevent: hermes.tool.progress\ndata:{"b": 2}\n\n:keepalive\n\nretry: 1500\n\nfoo: bar\nid: 7\ndata: y\n\n'
  const { writes, handler } = run([bytes(input)])
  t.equal(writes[0]?.toString(), input, 'the read went out whole and unchanged')
  t.equal(writes.length, 2, 'one write for the read, one (empty) at the end')
  t.equal(writes[1]?.length, 0, 'nothing held at the end')
  t.equal(handler.seen.length, 0, 'no event was parsed: none could change')
})

t.test('CRLF, lone CR, LF and a BOM: bytes kept, events framed and parsed as WHATWG SSE says', async (t) => {
  const input = '\ufeffdata: x1\r\ndata: b\r\n\r\ndata: c\rdata: x2\r\rdata: x3\n\n'
  const { text, handler } = run([bytes(input)])
  t.equal(text, input, 'byte for byte, BOM included')
  t.same(handler.seen.map((e) => e.data), ['x1\nb', 'c\nx2', 'x3'], 'three events, the BOM not part of the first field')
})

t.test('an event that changes is replaced where it was; others are sliced around it', async (t) => {
  const { writes, text } = run([bytes('data: a\n\ndata: change\n\ndata: b\n\n')])
  t.equal(text, 'data: a\n\ndata: inserted\n\ndata: changed\n\ndata: b\n\n', 'inserted and changed text in place')
  t.equal(writes.length, 2, 'still one write for the read')
})

t.test('nothing after [DONE] is forwarded', async (t) => {
  const { text, handler } = run([bytes('data: [DONE]\n\ndata: late\n\n: c\n\n'), bytes('data: later\n\n')])
  t.equal(text, 'data: [DONE]\n\n', 'only the terminal event')
  t.equal(handler.flushed, 0, 'no flush after done')
})

t.test('an event the stream ends inside is forwarded only when the answer is whole', async (t) => {
  const cut = run([bytes('data: a\n\ndata: [DONE]\n')], { held: true })
  t.equal(cut.text, 'data: a\n\ndata: held\n\n', 'a cut answer: held text, and the unfinished event is dropped (clients drop it too)')
  const whole = run([bytes('data: a\n\ndata: [DONE]\n')], { complete: true, held: true })
  t.equal(whole.text, 'data: a\n\ndata: held\n\ndata: [DONE]\n', 'a whole answer keeps its last bytes as they came')
})

t.test('a 10 MB single line passes through; past the cap the stream reports overflow', async (t) => {
  const big = 'y'.repeat(10 * 1024 * 1024)
  const { text } = run([bytes(`data: ${big}`), bytes('\n'), bytes('\n')])
  t.equal(text.length, big.length + 8, 'the whole line came through')
  const capped = run([bytes(`data: ${'y'.repeat(5000)}`), bytes('\n\n')], { maxEventSize: 1000, held: true })
  t.ok(capped.overflowed, 'overflow reported')
  t.equal(capped.text, 'data: held\n\n', 'nothing partial is sent, held text still is')
  t.equal(capped.handler.flushed, 1, 'held text is flushed at the end')
})

t.test('raw byte splits anywhere, even inside UTF-8 sequences and CRLF, give the same bytes and events', async (t) => {
  const input = bytes('\ufeffdata: {"c": "🍎 é x — \\u2014"}\r\n\r\n: keepalive\r\rdata: change\n\nevent: x\ndata: ünïcödé\r\n\r\ndata: plain\n\ndata: [DONE]\n\n')
  const expected = run([input])
  t.equal(expected.writes.length, 2, 'one write for one read')
  fc.assert(fc.property(fc.uniqueArray(fc.integer({ min: 1, max: input.length - 1 }), { maxLength: 20 }), (cuts) => {
    const { text, handler } = run(splitAt(input, cuts))
    return text === expected.text && JSON.stringify(handler.seen) === JSON.stringify(expected.handler.seen)
  }), { numRuns: 2000 })
  t.pass('2000 byte splits agree')
  t.equal(run([...input].map((b) => Uint8Array.of(b))).text, expected.text, 'one byte at a time')
})

t.test('nothing an upstream read completed waits for a later read', async (t) => {
  const handler = recorder()
  const stream = createEventStream(handler)
  t.equal(stream.feed(bytes('data: a\n\ndata: b')).toString(), 'data: a\n\n', 'the complete event goes now')
  t.equal(stream.feed(bytes('\n')).toString(), '', 'one line end does not end an event')
  t.equal(stream.feed(bytes('\ndata: c\r')).toString(), 'data: b\n\n', 'the blank line does')
  t.equal(stream.feed(bytes('\r')).toString(), 'data: c\r\r', 'a CR blank line ends one at once')
  t.equal(stream.feed(bytes('\ndata: d\n\n')).toString(), '\ndata: d\n\n', 'the LF of a split CRLF goes with the next bytes')
})
