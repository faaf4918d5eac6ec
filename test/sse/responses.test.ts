import { readFileSync } from 'node:fs'
import t from 'tap'
import fc from 'fast-check'
import { createResponsesHandler, MAX_PARTS } from '../../src/sse/responses.js'
import { createEventStream } from '../../src/sse/event-stream.js'
import { createRewriter } from '../../src/rewrite/rewriter.js'
import { fakeResolve } from '../fixtures/resolve.js'
import { dataLines, rawEvents } from '../fixtures/gate.js'
import { pyJson } from '../fixtures/chat.js'

const APPLE = '/root/.hermes/cache/images/openai_codex_gpt-image-2-medium_20260424_143801_f2c2ad0c.png'
const APPLE_URL = 'http://gate.test/images/openai_codex_gpt-image-2-medium_20260424_143801_f2c2ad0c.png'
const resolve = fakeResolve({ [APPLE]: 'image', '/c/x.png': 'image' })
/** The whole text through one rewriter: what every split of it must give. */
function whole (text: string): string {
  const rewriter = createRewriter({ resolve })
  return rewriter.push(text) + rewriter.end()
}
const FIXTURE = readFileSync(new URL('../fixtures/hermes/hermes-responses-stream.sse', import.meta.url), 'utf8')

function transform (input: string | Uint8Array[]): string[] {
  const stream = createEventStream(createResponsesHandler(() => createRewriter({ resolve }), whole))
  const chunks = typeof input === 'string' ? [new TextEncoder().encode(input)] : input
  return rawEvents([...chunks.map((chunk) => stream.feed(chunk).toString()), stream.end().toString()].join(''))
}

type Event = Record<string, any>
const events = (out: string[]): Event[] => dataLines(out.join('')).map((data) => JSON.parse(data) as Event)
const deltas = (list: Event[]): string => list.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('')

function event (type: string, sequence: number, fields: Record<string, unknown>): string {
  return `event: ${type}\ndata: ${pyJson({ type, sequence_number: sequence, ...fields })}\n\n`
}

t.test('the hermes fixture: deltas, done text, done item and completed output all rewritten', async (t) => {
  const list = events(transform(FIXTURE))
  const expected = readFileSync(new URL('../fixtures/hermes/hermes-chat-stream.expected.txt', import.meta.url), 'utf8').replace(APPLE, APPLE_URL)
  t.equal(deltas(list), expected, 'deltas')
  const done = list.find((e) => e.type === 'response.output_text.done')
  t.equal(done?.text, expected, 'output_text.done')
  t.equal(list.find((e) => e.type === 'response.output_item.done')?.item.content[0].text, expected, 'output_item.done')
  t.equal(list.find((e) => e.type === 'response.completed')?.response.output[0].content[0].text, expected, 'response.completed')
  t.same(list.map((e) => e.sequence_number), [0, 1, 2, 3, 4, 5, 6, 7, 8], 'sequence numbers unchanged')
  t.equal(list.find((e) => e.type === 'response.completed')?.response.usage.total_tokens, 1904, 'usage intact')
  const created = FIXTURE.split('\n\n')[0] + '\n\n'
  t.equal(transform(FIXTURE)[0], created, 'an event with nothing to rewrite is forwarded byte-identical')
})

t.test('held text gets its own delta before output_text.done, later numbers shift', async (t) => {
  const ids = { item_id: 'm', output_index: 0, content_index: 0 }
  const input = [
    event('response.output_text.delta', 0, { ...ids, delta: 'see MEDIA:/c/x.png' }),
    event('response.output_text.done', 1, { ...ids, text: 'see MEDIA:/c/x.png' }),
    event('response.completed', 2, { response: { output: [{ content: [{ type: 'output_text', text: 'see MEDIA:/c/x.png' }] }], output_text: 'see MEDIA:/c/x.png' } })
  ].join('')
  const list = events(transform(input))
  const url = '![x.png](http://gate.test/images/x.png)'
  t.same(list.map((e) => [e.type, e.sequence_number]), [
    ['response.output_text.delta', 0], ['response.output_text.delta', 1], ['response.output_text.done', 2], ['response.completed', 3]
  ], 'one delta inserted, numbers strictly increasing without gaps')
  t.same(list.map((e) => e.delta ?? null).slice(0, 2), ['see ', url], 'the held reference completes at the end of the part')
  t.equal(list[2]!.text, `see ${url}`, 'done text')
  t.equal(list[3]!.response.output_text, `see ${url}`, 'output_text convenience field')
})

t.test('anything else passes through', async (t) => {
  const ids = { item_id: 'm', output_index: 0, content_index: 0 }
  const odd = [
    'data: not json\n\n', 'data: {"no": "type"}\n\n', 'event: response.in_progress\ndata: {"type": "response.in_progress", "sequence_number": 3}\n\n', 'event: error\ndata: {"type": "error", "message": "x"}\n\n',
    event('response.output_text.delta', 4, { ...ids, delta: null }),
    event('response.content_part.added', 5, { ...ids, part: { type: 'output_text', text: 'no reference here' } })
  ]
  t.same(transform(odd.join('')), odd, 'unchanged')
})

t.test('content parts are rewritten when they are added and when they are done', async (t) => {
  const ids = { item_id: 'm', output_index: 0, content_index: 0 }
  const input = [
    event('response.content_part.added', 0, { ...ids, part: { type: 'output_text', text: 'see ![a](/c/x.png)' } }),
    event('response.content_part.done', 1, { ...ids, part: { type: 'output_text', text: 'see ![a](/c/x.png)' } })
  ].join('')
  t.same(events(transform(input)).map((e) => e.part.text), ['see ![a](http://gate.test/images/x.png)', 'see ![a](http://gate.test/images/x.png)'], 'both')
})

t.test('parts past the cap pass through', async (t) => {
  const input = Array.from({ length: MAX_PARTS + 1 }, (_, i) => event('response.output_text.delta', i, { item_id: `m${i}`, output_index: i, content_index: 0, delta: '![a](/c/x.png)' })).join('')
  const list = events(transform(input))
  t.equal(list[0]!.delta, '![a](http://gate.test/images/x.png)', 'first part rewritten')
  t.equal(list[MAX_PARTS]!.delta, '![a](/c/x.png)', 'the part past the cap left alone')
})

t.test('chunk invariance over raw bytes of the fixture', async (t) => {
  const bytes = new TextEncoder().encode(FIXTURE)
  const expected = transform(FIXTURE)
  fc.assert(fc.property(fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 20 }), (cuts) => {
    const chunks: Uint8Array[] = []
    let from = 0
    for (const cut of [...cuts].sort((a, b) => a - b)) { chunks.push(bytes.subarray(from, cut)); from = cut }
    chunks.push(bytes.subarray(from))
    return JSON.stringify(transform(chunks)) === JSON.stringify(expected)
  }), { numRuns: 500 })
  t.pass('500 byte splits agree')
})

t.test('texts repeated in the closing events reuse the rewrite of the deltas', async (t) => {
  let wholeRewrites = 0
  const counting = (text: string): string => { wholeRewrites++; return whole(text) }
  const stream = createEventStream(createResponsesHandler(() => createRewriter({ resolve }), counting))
  const out = [stream.feed(new TextEncoder().encode(FIXTURE)).toString(), stream.end().toString()]
  const list = events(out)
  const expected = readFileSync(new URL('../fixtures/hermes/hermes-chat-stream.expected.txt', import.meta.url), 'utf8').replace(APPLE, APPLE_URL)
  t.equal(list.find((e) => e.type === 'response.completed')?.response.output[0].content[0].text, expected, 'the completed text is right')
  t.equal(wholeRewrites, 0, 'and no text was rewritten a second time')
  const ids = { item_id: 'm', output_index: 0, content_index: 0 }
  const differing = [
    event('response.output_text.delta', 0, { ...ids, delta: 'a ![x](/c/x.png)' }),
    event('response.output_text.done', 1, { ...ids, text: 'other text ![x](/c/x.png)' })
  ].join('')
  const second = events([createEventStream(createResponsesHandler(() => createRewriter({ resolve }), counting)).feed(new TextEncoder().encode(differing)).toString()])
  t.equal(second[1]?.text, 'other text ![x](http://gate.test/images/x.png)', 'a done text that differs from its deltas is rewritten on its own')
  t.equal(wholeRewrites, 1, 'once')
  // Past 256 KiB a part's text is no longer kept: its done text is rewritten on its own.
  const long = 'x'.repeat(256 * 1024) + ' ![x](/c/x.png)'
  const longInput = [
    event('response.output_text.delta', 0, { ...ids, delta: long.slice(0, 1000) }),
    event('response.output_text.delta', 1, { ...ids, delta: long.slice(1000) }),
    event('response.output_text.done', 2, { ...ids, text: long })
  ].join('')
  const third = events([createEventStream(createResponsesHandler(() => createRewriter({ resolve }), counting)).feed(new TextEncoder().encode(longInput)).toString()])
  const longUrl = long.replace('/c/x.png', 'http://gate.test/images/x.png')
  t.equal(deltas(third), longUrl, 'the deltas of a long part are rewritten')
  t.equal(third[2]?.text, longUrl, 'and so is its done text')
  t.equal(wholeRewrites, 2, 'by a rewrite of its own')
})

t.test('remembered texts are bounded per stream', async (t) => {
  let wholeRewrites = 0
  const counting = (text: string): string => { wholeRewrites++; return whole(text) }
  const stream = createEventStream(createResponsesHandler(() => createRewriter({ resolve }), counting))
  // Ever new 200 KB texts: each is rewritten once, and only the first few are kept.
  const text = (i: number): string => `${i} `.padEnd(200 * 1024, 'x')
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 8; i++) {
      stream.feed(new TextEncoder().encode(event('response.content_part.done', i, { part: { type: 'output_text', text: text(i) } })))
    }
  }
  t.ok(wholeRewrites > 8, `texts past the bound are not kept, so they are rewritten again (${wholeRewrites} rewrites of 16 events)`)
  t.ok(wholeRewrites < 16, 'the first ones are kept and reused')
})

t.test('an event that may change but is no JSON object goes out as it came', async (t) => {
  const odd = 'event: response.output_text.delta\ndata: {not json\n\nevent: response.output_text.delta\ndata: ["output_text"]\n\n'
  t.equal(transform(odd).join(''), odd, 'byte for byte')
})

t.test('events the raw text cannot be edited in are written again, with the same meaning', async (t) => {
  const ids = { item_id: 'm', output_index: 0, content_index: 0 }
  const input = [
    event('response.output_text.delta', 0, { ...ids, delta: 'see ![a](/c/x.png' }),
    event('response.output_text.done', 1, { ...ids, text: 'see ![a](/c/x.png' }),
    // A nested `sequence_number` first: the number is not edited in place.
    'event: response.completed\ndata: {"type":"response.completed","response":{"sequence_number":99,"output":[]},"sequence_number":2}\n\n',
    // Data over two lines.
    'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":3,"item_id":"n","output_index":1,"content_index":0,\ndata: "delta":"![b](/c/x.png)"}\n\n',
    // A part that is not an object.
    'event: response.content_part.added\ndata: {"type":"response.content_part.added","sequence_number":4,"part":"output_text"}\n\n',
    'event: response.output_item.added\ndata: {"type":"response.output_item.added","sequence_number":5,"item":"output_text"}\n\n'
  ].join('')
  const list = events(transform(input))
  t.same(list.map((e) => e.sequence_number), [0, 1, 2, 3, 4, 5, 6], 'numbers shifted past the inserted delta')
  t.same(list[3]?.response, { sequence_number: 99, output: [] }, 'the nested field untouched')
  t.equal(list[4]?.delta, '![b](http://gate.test/images/x.png)', 'the two-line delta rewritten')
  t.equal(list[5]?.part, 'output_text', 'the odd part kept')
  t.equal(list[6]?.item, 'output_text', 'and the odd item')
})

t.test('text deltas of the part the last one went to are taken on their bytes', async (t) => {
  const handler = createResponsesHandler(() => createRewriter({ resolve }), whole)
  const out: Array<Buffer | string> = []
  const inspect = (text: string): string => {
    const buf = Buffer.from(text)
    return handler.inspect({ buf, start: 0, end: buf.length, lines: text.split('\n').filter((line) => line !== '').length }, out)
  }
  const delta = (sequence: number, text: string, item = 'msg_1'): string => event('response.output_text.delta', sequence, { item_id: item, output_index: 0, content_index: 0, delta: text, logprobs: [] })
  t.equal(inspect(delta(3, 'Here')), 'decode', 'the first delta of a part is parsed')
  handler.onEvent({ event: 'response.output_text.delta', data: dataLines(delta(3, 'Here'))[0] ?? '', id: undefined }, delta(3, 'Here'), [])
  t.equal(inspect(delta(4, ' you go \u2014 ')), 'forward', 'the next, plain, goes as it came')
  t.equal(out.length, 0, 'nothing written for it')
  t.equal(inspect(delta(5, 'a ![b](/c/x.png) c')), 'replaced', 'a delta with a whole reference')
  t.equal(out.map(String).join(''), delta(5, 'a ![b](http://gate.test/images/x.png) c'), 'changed only inside its text')
  out.length = 0
  t.equal(inspect(delta(6, 'x', 'msg_2')), 'decode', 'a delta of another part is parsed')
  t.equal(inspect(delta(7, 'y').replace('"delta": "y"', '"delta": "bad \\x escape"')), 'decode', 'a text that is no JSON string is parsed')
})
