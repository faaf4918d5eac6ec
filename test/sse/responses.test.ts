import { readFileSync } from 'node:fs'
import t from 'tap'
import fc from 'fast-check'
import { createResponsesHandler, MAX_PARTS } from '../../src/sse/responses.js'
import { createEventStream } from '../../src/sse/event-stream.js'
import { createRewriter } from '../../src/rewrite/rewriter.js'
import { fakeResolve } from '../fixtures/resolve.js'
import { dataLines, rawEvents } from '../fixtures/gate.js'
import { pyJson } from '../fixtures/chat.js'
import { cutAt, splitBytes } from '../fixtures/split.js'

const APPLE = '/root/.hermes/cache/images/openai_codex_gpt-image-2-medium_20260424_143801_f2c2ad0c.png'
const APPLE_URL = 'http://gate.test/images/openai_codex_gpt-image-2-medium_20260424_143801_f2c2ad0c.png'
// A name that is a replacement character: what a lone surrogate becomes in UTF-8.
const resolve = fakeResolve({ [APPLE]: 'image', '/c/x.png': 'image', '/c/\ufffd.png': 'image' })
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
    return JSON.stringify(transform(cutAt(bytes, cuts))) === JSON.stringify(expected)
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

/** The same transform with every event parsed: what the raw-byte paths must give. */
function transformParsed (input: string | Uint8Array[]): string[] {
  const handler = createResponsesHandler(() => createRewriter({ resolve }), whole)
  const stream = createEventStream({ ...handler, inspect: () => 'decode', get complete () { return handler.complete } })
  const chunks = typeof input === 'string' ? [new TextEncoder().encode(input)] : input
  return rawEvents([...chunks.map((chunk) => stream.feed(chunk).toString()), stream.end().toString()].join(''))
}

/** OpenAI's delta: compact, a sequence number first, an obfuscation that changes every event. */
const openaiDelta = (sequence: number, item: string, text: string, obfuscation = 'oO4Mvw'.slice(sequence % 5)): string =>
  `event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":${sequence},"item_id":"${item}","output_index":0,"content_index":0,"delta":${JSON.stringify(text)},"logprobs":[],"obfuscation":"${obfuscation}"}\n\n`

/** A stream whose deltas change shape in every way the shape memory must notice. */
const SHAPES = [
  openaiDelta(8, 'msg_a', 'Here '),
  openaiDelta(9, 'msg_a', 'you go \u2014 '),
  // Same shape from here on: the sequence number gets more digits, the text escapes.
  openaiDelta(10, 'msg_a', 'a "quoted" apple:\n'),
  openaiDelta(100, 'msg_a', '![an apple]('),
  openaiDelta(1000, 'msg_a', '/c/x.png) and '),
  // Another part, then back.
  openaiDelta(1001, 'msg_b', 'MEDIA:/c/x.png '),
  openaiDelta(1002, 'msg_a', 'more '),
  // The same part with its keys in another order, and with an extra key.
  'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","content_index":0,"delta":"sorted ","item_id":"msg_a","logprobs":[],"output_index":0,"sequence_number":1003}\n\n',
  'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","content_index":0,"delta":"extra ","item_id":"msg_a","logprobs":[],"output_index":0,"sequence_number":1004,"x":{"delta":"no"}}\n\n',
  openaiDelta(1005, 'msg_a', 'back '),
  openaiDelta(1006, 'msg_a', 'plain '),
  // A second delta after the remembered shape: the client reads the last one.
  openaiDelta(1007, 'msg_a', 'hidden ').replace('"}\n\n', '","delta":"shown ![b](/c/x.png) "}\n\n'),
  openaiDelta(1008, 'msg_a', 'plain again '),
  // A second delta inside the obfuscation's place, and one that swallows the rest.
  openaiDelta(1009, 'msg_a', 'x ').replace('"obfuscation":"', '"obfuscation":"o","delta":"MEDIA:/c/x.png ","z":"'),
  openaiDelta(1010, 'msg_a', 'y ').replace('"logprobs":[]', '"logprobs":[{"delta":"![c](/c/x.png)"}]'),
  // The other part's delta, parsed (it has an id line) while the first part's shape is
  // remembered: the next delta of that shape goes to the first part, not the other.
  'id: 7\n' + openaiDelta(1010, 'msg_b', 'see ![b](/c/'),
  openaiDelta(1010, 'msg_a', 'x.png) '),
  // CRLF line ends, twice: a new shape, then that shape again.
  openaiDelta(1011, 'msg_a', 'crlf ').replace(/\n/g, '\r\n'),
  openaiDelta(1012, 'msg_a', 'crlf ![d](/c/x.png) ').replace(/\n/g, '\r\n'),
  openaiDelta(1013, 'msg_a', 'end').replace(/\n/g, '\r\n'),
  event('response.output_text.done', 1014, { item_id: 'msg_a', output_index: 0, content_index: 0, text: 'not the deltas ![e](/c/x.png)' }),
  event('response.output_text.done', 1015, { item_id: 'msg_b', output_index: 0, content_index: 0, text: 'MEDIA:/c/x.png ' }),
  event('response.completed', 1016, { response: { output: [], output_text: 'MEDIA:/c/x.png ' } })
].join('')

t.test('deltas taken by the shape of the one before give exactly what the parser gives', async (t) => {
  const expected = transformParsed(SHAPES)
  t.equal(transform(SHAPES).join(''), expected.join(''), 'the same bytes')
  const list = events(expected)
  const url = 'http://gate.test/images/x.png'
  t.match(deltas(list), `![an apple](${url}) and `, 'a reference split across deltas of one shape is rewritten')
  t.equal(list.filter((e) => e.type === 'response.output_text.delta' && e.item_id === 'msg_b').map((e) => e.delta).join(''), `![x.png](${url}) see ![b](/c/`, 'the other part, its held text released when it ends')
  t.equal(list[11]?.delta, `shown ![b](${url}) `, 'a second delta key: the one the client reads is rewritten')
  t.equal(list[13]?.delta, `![x.png](${url}) `, 'a second delta inside a changing value: the one the client reads is rewritten')
  t.equal(list[16]?.delta, 'x.png) ', 'a delta of the part whose shape is remembered, after a parsed delta of another part')
  t.equal(list[18]?.delta, `crlf ![d](${url}) `, 'CRLF')
  t.equal(list.find((e) => e.type === 'response.output_text.done')?.text, `not the deltas ![e](${url})`, 'a done text that is not its deltas is rewritten as it is')
  const bytes = new TextEncoder().encode(SHAPES)
  fc.assert(fc.property(fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 30 }), (cuts) => {
    return transform(cutAt(bytes, cuts)).join('') === expected.join('')
  }), { numRuns: 500 })
  t.pass('500 byte splits give the same bytes')
  t.equal(transform(splitBytes(SHAPES)).join(''), expected.join(''), 'reads of 1 to 7 bytes in turn, cutting every event, CRLF and character')
})

t.test('a part\'s text is kept as bytes: its repeats are not rewritten again, a different one is', async (t) => {
  let wholeRewrites = 0
  const counting = (text: string): string => { wholeRewrites++; return whole(text) }
  const run = (input: string): Event[] => {
    const stream = createEventStream(createResponsesHandler(() => createRewriter({ resolve }), counting))
    return events([stream.feed(Buffer.from(input)).toString(), stream.end().toString()])
  }
  const url = 'http://gate.test/images/x.png'
  const done = (text: string): string => event('response.output_text.done', 99, { item_id: 'm', output_index: 0, content_index: 0, text })
  const plain = ['Plain ', 'words \u00e9\u2014\ud83c\udf4e ', 'and more'].map((text, i) => openaiDelta(i, 'm', text)).join('')
  t.equal(run(plain + done('Plain words \u00e9\u2014\ud83c\udf4e and more')).at(-1)?.text, 'Plain words \u00e9\u2014\ud83c\udf4e and more', 'plain deltas, taken on their bytes')
  const long = ['Long ', 'words '.repeat(20), 'end'].map((text, i) => openaiDelta(i, 'm', text)).join('')
  t.equal(run(long + done(`Long ${'words '.repeat(20)}end`)).at(-1)?.text, `Long ${'words '.repeat(20)}end`, 'a long plain delta')
  t.equal(wholeRewrites, 0, 'their done text is known')
  // Line ends make these deltas decoded and pushed: their text is kept from the string.
  const decoded = ['Line\n', 'caf\u00e9\n', '\u2014 dash\n', '\ud83c\udf4e apple\n', 'long '.repeat(20) + '\n'].map((text, i) => openaiDelta(i, 'm', text)).join('')
  const decodedText = 'Line\ncaf\u00e9\n\u2014 dash\n\ud83c\udf4e apple\n' + 'long '.repeat(20) + '\n'
  t.equal(run(decoded + done(decodedText)).at(-1)?.text, decodedText, 'decoded deltas of one to four bytes per character, short and long')
  t.equal(wholeRewrites, 0, 'their done text is known: the bytes kept are its UTF-8')
  const rewritten = ['See ', '![a](/c/x.png)', ' and ', 'MEDIA:/c/x', '.png done'].map((text, i) => openaiDelta(i, 'm', text)).join('')
  t.equal(run(rewritten + done('See ![a](/c/x.png) and MEDIA:/c/x.png done')).at(-1)?.text, `See ![a](${url}) and ![x.png](${url}) done`, 'deltas with references, one held across deltas')
  t.equal(wholeRewrites, 0, 'their done text is known too')
  t.equal(run(plain + done('Plain words and more ![a](/c/x.png)')).at(-1)?.text, `Plain words and more ![a](${url})`, 'a done text that differs from its plain deltas')
  t.equal(wholeRewrites, 1, 'is rewritten on its own')
  // JSON written with ASCII only (hermes): escapes of characters past ASCII, \" and \/
  // are plain text, taken on their bytes; the text kept is what they stand for.
  const literals = ['Caf\\u00e9 ', '\\u2014 \\ud83c\\udf4e ', 'say \\"hi\\" ', 'a\\/b ', '\\u00e9'.repeat(30)]
  const escaped = literals.map((literal, i) => openaiDelta(i, 'm', 'x').replace('"delta":"x"', `"delta":"${literal}"`)).join('')
  const escapedText = literals.map((literal) => JSON.parse(`"${literal}"`) as string).join('')
  t.equal(run(escaped + done(escapedText)).at(-1)?.text, escapedText, 'deltas with escapes, taken on their bytes')
  t.equal(wholeRewrites, 1, 'their done text is known')
  const spelled = literals.join('')
  t.equal(run(escaped + done(spelled)).at(-1)?.text, spelled, 'a done text that spells the escapes themselves')
  t.equal(wholeRewrites, 2, 'is not taken for the deltas\' text')
  // A character cut between two deltas' bytes: each delta reads as a replacement
  // character, so the part's text is not the text its joined bytes spell.
  const latin1 = (text: string): Buffer => Buffer.from(text, 'latin1')
  const cutPlain = Buffer.concat([Buffer.from(openaiDelta(0, 'm', 'x ')), latin1(openaiDelta(1, 'm', 'caf\u00c3')), latin1(openaiDelta(2, 'm', '\u00a9 more')), Buffer.from(done('x caf\u00e9 more'))])
  const plainStream = createEventStream(createResponsesHandler(() => createRewriter({ resolve }), counting))
  const plainList = events([plainStream.feed(cutPlain).toString(), plainStream.end().toString()])
  t.equal(deltas(plainList), 'x caf\ufffd\ufffd more', 'plain deltas that cut a character read as replacement characters')
  t.equal(plainList.at(-1)?.text, 'x caf\u00e9 more', 'the done text that spells the joined character')
  t.equal(wholeRewrites, 3, 'is not taken for their text: it is rewritten on its own')
  const cutBytes = Buffer.concat([Buffer.from(openaiDelta(0, 'm', 'x ')), latin1(openaiDelta(1, 'm', 'caf\u00c3')), latin1(openaiDelta(2, 'm', '\u00a9 ![a](/c/x.png)')), Buffer.from(done('x caf\u00e9 ![a](/c/x.png)'))])
  const stream = createEventStream(createResponsesHandler(() => createRewriter({ resolve }), counting))
  const list = events([stream.feed(cutBytes).toString(), stream.end().toString()])
  t.equal(deltas(list), `x caf\ufffd\ufffd ![a](${url})`, 'the deltas read as replacement characters')
  t.equal(list.at(-1)?.text, `x caf\u00e9 ![a](${url})`, 'the done text that spells the joined character is rewritten as it is')
  t.equal(wholeRewrites, 4, 'on its own')
  // Halves of a surrogate pair in two deltas: JSON strings, not UTF-8.
  const halves = openaiDelta(0, 'm', 'x ') + openaiDelta(1, 'm', '\ud83c') + openaiDelta(2, 'm', '\udf4e ![a](/c/x.png)')
  t.equal(run(halves + done('x \ud83c\udf4e ![a](/c/x.png)')).at(-1)?.text, `x \ud83c\udf4e ![a](${url})`, 'a pair split across deltas')
  t.equal(wholeRewrites, 5, 'is rewritten on its own')
  // A lone surrogate is a replacement character in UTF-8: kept as bytes, the part's
  // text would pass for a done text that names another file.
  const lone = openaiDelta(0, 'm', 'x ') + openaiDelta(1, 'm', '![a](/c/\ud800.png)')
  t.equal(run(lone + done('x ![a](/c/\ufffd.png)')).at(-1)?.text, 'x ![a](http://gate.test/images/%EF%BF%BD.png)', 'a done text with the replacement character is rewritten as it is')
  t.equal(wholeRewrites, 6, 'on its own')
  // Deltas after the part's end: its kept text stays what it was when it ended.
  const after = openaiDelta(0, 'm', 'a ') + openaiDelta(1, 'm', 'b ') + event('response.output_text.done', 2, { item_id: 'm', output_index: 0, content_index: 0 }) + openaiDelta(3, 'm', '![a](/c/x.png)') +
    event('response.completed', 3, { response: { output: [], output_text: 'a b ![a](/c/x.png)' } })
  const afterList = run(after)
  t.equal(afterList.at(-1)?.response.output_text, `a b ![a](${url})`, 'a text that goes on after the part ended is rewritten')
  t.equal(wholeRewrites, 7, 'on its own')
})

t.test('kept part texts are bounded per stream, and compared as texts, not only as bytes', async (t) => {
  let wholeRewrites = 0
  const counting = (text: string): string => { wholeRewrites++; return whole(text) }
  const handler = createResponsesHandler(() => createRewriter({ resolve }), counting)
  const stream = createEventStream(handler)
  const send = (input: string): Event[] => events([stream.feed(Buffer.from(input)).toString()])
  const ids = (i: number): Record<string, unknown> => ({ item_id: `m${i}`, output_index: i, content_index: 0 })
  let sequence = 0
  const part = (i: number, texts: string[], done?: string): string =>
    texts.map((text) => event('response.output_text.delta', sequence++, { ...ids(i), delta: text })).join('') +
    event('response.output_text.done', sequence++, done === undefined ? ids(i) : { ...ids(i), text: done })
  const partDone = (text: string): Event | undefined => send(event('response.content_part.done', sequence++, { part: { type: 'output_text', text } }))[0]
  // An empty part keeps nothing; 64 parts that ended are kept (of two responses: one
  // holds at most 64 parts), and a 65th drops the first.
  send(part(0, ['']))
  for (let i = 1; i < 64; i++) send(part(i, [`text ${i} `, 'and more']))
  send(event('response.completed', sequence++, { response: { output: [] } }))
  send(part(64, ['text 64 ', 'and more']))
  t.equal(wholeRewrites, 0, 'nothing rewritten whole yet')
  partDone('text 1 and more')
  t.equal(wholeRewrites, 0, 'the first is still known')
  send(part(65, ['text 65 ', 'and more']))
  send(part(66, ['text 66 ', 'and more']))
  t.equal(wholeRewrites, 0, 'nothing rewritten whole yet')
  partDone('text 3 and more')
  t.equal(wholeRewrites, 0, 'a kept text is known')
  partDone('text 2 and more')
  t.equal(wholeRewrites, 1, 'the oldest of 65 was dropped: rewritten whole')
  // Together they hold at most 1 MiB: the fifth text of 250 KB is not kept.
  const big = (i: number): string => `${i} `.padEnd(250 * 1000, 'y')
  for (let i = 67; i < 72; i++) send(part(i, [big(i).slice(0, 1000), big(i).slice(1000)]))
  partDone(big(67))
  t.equal(wholeRewrites, 1, 'the first big text is kept')
  partDone(big(71))
  t.equal(wholeRewrites, 2, 'the one past the bound was not')
  // One delta longer than a text is kept: the part keeps nothing.
  const huge = 'z'.repeat(256 * 1024 + 1)
  send(part(72, [huge]))
  partDone(huge)
  t.equal(wholeRewrites, 3, 'a delta too long to keep')
  // A lone surrogate has the bytes of a replacement character, but is another text,
  // naming another file.
  send(part(73, ['x ', '![a](/c/\ufffd.png)']))
  t.equal(partDone('x ![a](/c/\ud800.png)')?.part.text, 'x ![a](/c/\ud800.png)', 'a text with a lone surrogate is not the kept text with a replacement character')
  t.equal(wholeRewrites, 4, 'it is rewritten on its own')
  t.equal(partDone('x ![a](/c/\ufffd.png)')?.part.text, 'x ![a](http://gate.test/images/%EF%BF%BD.png)', 'the kept text itself is still known')
  t.equal(wholeRewrites, 4, 'and not rewritten again')
})
