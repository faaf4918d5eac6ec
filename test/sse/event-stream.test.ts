import t from 'tap'
import fc from 'fast-check'
import type { EventSourceMessage } from 'eventsource-parser'
import { createEventStream } from '../../src/sse/event-stream.js'
import type { EventHandler, RawEvent, Verdict } from '../../src/sse/event-stream.js'
import { cutAt } from '../fixtures/split.js'

/**
 * A handler that sends events holding `x` to be decoded (`inspect`), records what it
 * parsed and each inspected event's bytes and line count, changes events whose data is
 * `change` (with one event inserted before), and replaces events holding `swap` on their
 * bytes, without decoding them.
 */
function recorder (options: { complete?: boolean, held?: boolean } = {}): EventHandler & { seen: EventSourceMessage[], flushed: number, inspected: Array<[string, number]> } {
  let done = false
  const handler = {
    seen: [] as EventSourceMessage[],
    flushed: 0,
    inspected: [] as Array<[string, number]>,
    inspect: ({ buf, start, end, lines }: RawEvent, out: Array<Buffer | string>): Verdict => {
      const event = buf.subarray(start, end)
      handler.inspected.push([event.toString(), lines])
      if (event.includes('swap')) {
        out.push('data: before\n\n', buf.subarray(start, start + 6), 'swapped', buf.subarray(end - 2, end))
        return 'replaced'
      }
      return event.includes('x') || event.includes('DONE') || event.includes('change') ? 'decode' : 'forward'
    },
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

t.test('an event the handler replaces on its bytes goes out as the pieces it gave, in place', async (t) => {
  const { writes, text, handler } = run([bytes('data: a\n\ndata: swap\n\ndata: b\n\n')])
  t.equal(text, 'data: a\n\ndata: before\n\ndata: swapped\n\ndata: b\n\n', 'the pieces replace the event, the others sliced around it')
  t.equal(writes.length, 2, 'still one write for the read')
  t.equal(handler.seen.length, 0, 'nothing was decoded')
})

t.test('each event is inspected with its count of lines that are not empty, whatever the line ends and reads', async (t) => {
  const input = 'data: a\n\nevent: e\r\ndata: b\r\n\r\n: c\rid: 1\rdata: d\r\r\n\ndata: e\n\n'
  const expected: Array<[string, number]> = [
    ['data: a\n\n', 1], ['event: e\r\ndata: b\r\n\r\n', 2], [': c\rid: 1\rdata: d\r\r\n', 3], ['\n', 0], ['data: e\n\n', 1]
  ]
  t.same(run([bytes(input)]).handler.inspected, expected, 'one read')
  const whole = bytes(input)
  // A read that ends between a CR and its LF ends the event at the CR (nothing waits for
  // a later read): the LF then comes with what follows, so compare the events with lines.
  const withLines = (events: Array<[string, number]>): Array<[string, number]> =>
    events.filter(([, lines]) => lines > 0).map(([text, lines]) => [text.replace(/^[\r\n]+|[\r\n]+$/g, ''), lines])
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: whole.length }), { maxLength: 8 }), (cuts) => {
    const seen = run(cutAt(whole, cuts)).handler.inspected
    t.same(withLines(seen), withLines(expected), `cut at ${cuts.join(',')}: the same events and lines`)
    t.equal(seen.map(([text]) => text).join(''), input, `cut at ${cuts.join(',')}: every byte inspected once`)
    return true
  }), { numRuns: 200 })
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
    const { text, handler } = run(cutAt(input, cuts))
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
