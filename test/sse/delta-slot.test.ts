import t from 'tap'
import fc from 'fast-check'
import { createDeltaSlotFinder, findDeltaSlot } from '../../src/sse/delta-slot.js'
import type { DeltaSlot } from '../../src/sse/delta-slot.js'

/** Nonempty lines, as the event framing counts them. */
const linesOf = (event: string): number => event.split(/\r\n|\r|\n/).filter((line) => line !== '').length

/** The delta's literal, item literal and indices as found, or undefined. */
function find (event: string, lines = 2): { item: string, output: number, content: number, literal: string } | undefined {
  const buf = Buffer.from(event, 'utf8')
  const slot: DeltaSlot = { itemFrom: -1, itemTo: -1, outputIndex: -1, contentIndex: -1, from: -1, to: -1 }
  if (!findDeltaSlot({ buf, start: 0, end: buf.length, lines }, slot)) return undefined
  return { item: buf.toString('utf8', slot.itemFrom, slot.itemTo), output: slot.outputIndex, content: slot.contentIndex, literal: buf.toString('utf8', slot.from, slot.to) }
}

const HERMES = 'event: response.output_text.delta\ndata: {"type": "response.output_text.delta", "sequence_number": 5, "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": TEXT, "logprobs": []}\n\n'
// OpenAI sorts the keys in some streams: the delta comes before the item.
const OPENAI = 'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":224,"item_id":"msg_06","output_index":2,"content_index":0,"delta":TEXT,"logprobs":[],"obfuscation":"oO4MvwT4Z52J"}\n\n'
const XAI = 'event: response.output_text.delta\ndata: {"sequence_number":9,"type":"response.output_text.delta","content_index":0,"delta":TEXT,"item_id":"msg_x","output_index":1,"logprobs":[]}\n\n'
const SORTED = 'event: response.output_text.delta\r\ndata:{"type":"response.output_text.delta","content_index":1,"delta":TEXT,"item_id":"msg_2","logprobs":[{"token":"delta","bytes":[1]}],"obfuscation":"x","output_index":3,"sequence_number":4}\r\n\r\n'

t.test('a text delta: its literal, item and indices, whatever the key order and line ends', async (t) => {
  t.same(find(HERMES.replace('TEXT', '"Here you go"')), { item: '"msg_1"', output: 0, content: 0, literal: '"Here you go"' }, 'hermes')
  t.same(find(SORTED.replace('TEXT', '"a \\"b\\" \\u2014"')), { item: '"msg_2"', output: 3, content: 1, literal: '"a \\"b\\" \\u2014"' }, 'OpenAI, keys sorted, CRLF')
  t.same(find(HERMES.replace('TEXT', '"x"').replace('event: ', 'event:')), { item: '"msg_1"', output: 0, content: 0, literal: '"x"' }, 'no space after event:')
  t.same(find(HERMES.replace('TEXT', '"x"').replace('"type": ', '"tags": [1, "delta"], "type": ')), { item: '"msg_1"', output: 0, content: 0, literal: '"x"' }, '"delta" first seen as a value in a list: the key after it')
  const rows: Array<[string, string, { item: string, output: number, content: number, literal: string }]> = [
    ['OpenAI, sequence number first, obfuscation last', OPENAI.replace('TEXT', '"Here"'), { item: '"msg_06"', output: 2, content: 0, literal: '"Here"' }],
    ['xAI, sequence number before the type', XAI.replace('TEXT', '"a"'), { item: '"msg_x"', output: 1, content: 0, literal: '"a"' }],
    ['logprobs that name every key, nested', SORTED.replace('TEXT', '"b"').replace('[{"token":"delta","bytes":[1]}]', '[{"delta":"no","type":{"item_id":[true,false,null,-1.5e+3,0,{}]}}]'), { item: '"msg_2"', output: 3, content: 1, literal: '"b"' }],
    ['tabs and spaces around every token', 'event: response.output_text.delta\ndata: { "type" :\t"response.output_text.delta" , "item_id" : "m" , "output_index" : 4 , "content_index" : 5 , "delta" : "c" , "x" : [ 1 , { "y" : 2 } ] }\n\n', { item: '"m"', output: 4, content: 5, literal: '"c"' }]
  ]
  for (const [label, text, expected] of rows) t.same(find(text), expected, label)
})

t.test('any other shape is left to the parser', async (t) => {
  const delta = HERMES.replace('TEXT', '"x"')
  const rows: Array<[string, string, number?]> = [
    ['another event', delta.replace('event: response.output_text.delta', 'event: response.output_text.done')],
    ['an event name with a longer tail', delta.replace('event: response.output_text.delta', 'event: response.output_text.deltas')],
    ['two spaces after event:', delta.replace('event: ', 'event:  ')],
    ['a type that disagrees with the event', delta.replace('"type": "response.output_text.delta"', '"type": "response.output_text.done"')],
    ['no event line', delta.slice(delta.indexOf('\n') + 1), 1],
    ['an id line first', delta.replace('event: response.output_text.delta', 'id: 1')],
    ['three lines', delta.replace('\ndata:', '\nid: 1\ndata:'), 3],
    ['data that is not one object', delta.replace('data: {', 'data: [{').replace('}\n\n', '}]\n\n')],
    ['a delta that is not a string', HERMES.replace('TEXT', '["x"]')],
    ['no item id', delta.replace('"item_id": "msg_1", ', '')],
    ['an item id that is not a string', delta.replace('"msg_1"', '7')],
    ['no output index', delta.replace('"output_index": 0, ', '')],
    ['an output index that is not a number', delta.replace('"output_index": 0', '"output_index": "0"')],
    ['no content index', delta.replace('"content_index": 0, ', '')],
    ['a delta key only in a string', delta.replace('"delta": "x"', '"text": "\\"delta\\": 1"')],
    ['an event cut inside the data', delta.slice(0, delta.indexOf('"logprobs"'))],
    // JSON.parse keeps the last of a duplicate key: the client would read another value.
    ['a second delta after the first', delta.replace('"logprobs": []', '"logprobs": [], "delta": "y"')],
    ['a second delta before the first', delta.replace('"type":', '"delta": "y", "type":')],
    ['a second type', delta.replace('"logprobs": []', '"type": "response.output_text.done"')],
    ['a second item id', delta.replace('"logprobs": []', '"item_id": "msg_2"')],
    ['a second output index', delta.replace('"logprobs": []', '"output_index": 1')],
    ['a second content index', delta.replace('"logprobs": []', '"content_index": 1')],
    ['a key spelled with an escape, which may be one of them', delta.replace('"logprobs": []', '"de\\u006cta": "y"')],
    ['an index with a leading zero, which JSON has not', delta.replace('"output_index": 0', '"output_index": 00')],
    ['a value of another key that is no JSON value', delta.replace('"logprobs": []', '"logprobs": tru')],
    ['a list that is never closed', delta.replace('"logprobs": []', '"logprobs": [1, 2')],
    ['a list closed by a brace', delta.replace('"logprobs": []', '"logprobs": [1}')],
    ['a list without its commas', delta.replace('"logprobs": []', '"logprobs": [1 2]')],
    ['an object in a list without its colon', delta.replace('"logprobs": []', '"logprobs": [{"a" 1}]')],
    ['a number without digits after its point', delta.replace('"logprobs": []', '"logprobs": 1.')],
    ['a number without digits in its exponent', delta.replace('"logprobs": []', '"logprobs": 1e+')],
    ['a minus alone', delta.replace('"logprobs": []', '"logprobs": -')],
    ['lists nested deeper than 32', delta.replace('"logprobs": []', `"logprobs": ${'['.repeat(33)}${']'.repeat(33)}`)],
    ['a comma before the closing brace', delta.replace('"logprobs": []', '"logprobs": [],')],
    ['a key without its colon', delta.replace('"logprobs": []', '"logprobs" []')],
    ['two values without a comma', delta.replace(', "logprobs"', ' "logprobs"')],
    ['a key that is no string', delta.replace('"logprobs": []', 'logprobs: []')],
    ['an empty object', 'event: response.output_text.delta\ndata: {}\n\n']
  ]
  for (const [label, text, lines] of rows) t.equal(find(text, lines), undefined, label)
})

t.test('lists nested up to 32 deep are values like any other', async (t) => {
  const nested = HERMES.replace('TEXT', '"x"').replace('"logprobs": []', `"logprobs": ${'['.repeat(32)}${']'.repeat(32)}`)
  t.equal(find(nested)?.literal, '"x"', 'taken')
})

interface Found { match: string, item: string, output: number, content: number, literal: string }

/** A finder that keeps its shape across calls: what it found, and how. */
function finder (): (event: string) => Found | undefined {
  const find = createDeltaSlotFinder()
  const slot: DeltaSlot = { itemFrom: -1, itemTo: -1, outputIndex: -1, contentIndex: -1, from: -1, to: -1 }
  return (event) => {
    const buf = Buffer.from(event, 'utf8')
    const match = find({ buf, start: 0, end: buf.length, lines: linesOf(event) }, slot)
    if (match === 'none') return undefined
    return { match, item: buf.toString('utf8', slot.itemFrom, slot.itemTo), output: slot.outputIndex, content: slot.contentIndex, literal: buf.toString('utf8', slot.from, slot.to) }
  }
}

/** What the walk over the keys finds in `event`, with the finder's answer for `match`. */
function walked (event: string, match: string): Found | undefined {
  const found = find(event, linesOf(event))
  return found === undefined ? undefined : { match, ...found }
}

t.test('a finder remembers the shape of the last delta and still reads every delta as the walk over its keys does', async (t) => {
  const read = finder()
  const openai = (sequence: number, text: string, obfuscation = 'oO4M'): string => OPENAI.replace('224', String(sequence)).replace('TEXT', JSON.stringify(text)).replace('oO4MvwT4Z52J', obfuscation)
  const steps: Array<[string, string, 'walked' | 'shape' | undefined]> = [
    ['first delta', openai(4, 'Here'), 'walked'],
    ['same shape, another text, sequence number and obfuscation', openai(5, ' you go', 'mqejtF5T0wGk65'), 'shape'],
    ['a sequence number with more digits', openai(12345, ' \u2014'), 'shape'],
    ['escapes in the text', openai(12346, 'a \\"b\\" \n'), 'shape'],
    ['an obfuscation that is a number now', openai(7, 'x').replace('"oO4M"', '17'), 'shape'],
    ['logprobs that hold keys of a delta, nested', openai(8, 'y').replace('"logprobs":[]', '"logprobs":[{"delta":"z","type":"a"}]'), 'shape'],
    ['another part', openai(9, 'z').replace('"msg_06"', '"msg_07"'), 'walked'],
    ['back to the first part', openai(10, 'w'), 'walked'],
    ['a second delta after the remembered shape', openai(11, 'v').replace('"oO4M"}', '"oO4M","delta":"![x](/c/x.png)"}'), undefined],
    ['a second delta inside a changing value', openai(12, 'v').replace('"oO4M"', '"a","delta":"u"'), undefined],
    ['a second delta where the logprobs were', openai(13, 'v').replace('"logprobs":[]', '"logprobs":[],"delta":"u"'), undefined],
    ['a logprobs list left open to swallow the rest', openai(14, 'v').replace('"logprobs":[]', '"logprobs":[,"delta":"u"]'), undefined],
    ['the same keys, a text never closed', openai(15, 'v').replace('"v"', '"v'), undefined],
    ['the same prefix, more bytes after the object', openai(16, 'v').replace('}\n\n', '} \n\n'), undefined],
    ['the keys in another order', SORTED.replace('TEXT', '"s"').replace(/\r/g, ''), 'walked'],
    ['an extra key', SORTED.replace('TEXT', '"s"').replace(/\r/g, '').replace('"logprobs"', '"extra":{"k":[1]},"logprobs"'), 'walked'],
    ['the same shape with CRLF line ends', SORTED.replace('TEXT', '"t"').replace('"extra"', '"extra"'), 'walked'],
    ['CRLF again', SORTED.replace('TEXT', '"u"').replace('"sequence_number":4', '"sequence_number":5'), 'shape'],
    ['a lone CR for the blank line', SORTED.replace('TEXT', '"u"').replace(/\r\n\r\n$/, '\r\n\r'), 'walked'],
    ['a line end inside the obfuscation', SORTED.replace('TEXT', '"u"').replace(/\r\n\r\n$/, '\r\n\r').replace('"x"', '"x\ny"'), undefined],
    ['the remembered bytes, then one more: the CRLF of the blank line', SORTED.replace('TEXT', '"v"'), 'walked'],
    ['an item id with another length', HERMES.replace('TEXT', '"h"').replace('"msg_1"', '"msg_12345"'), 'walked'],
    ['same', HERMES.replace('TEXT', '"i"').replace('"msg_1"', '"msg_12345"').replace('5,', '6,'), 'shape'],
    ['a delta of another event', HERMES.replace('TEXT', '"j"').replace('event: response.output_text.delta', 'event: response.output_text.done'), undefined],
    ['a shape too long to remember', HERMES.replace('TEXT', '"k"').replace('"logprobs"', `"pad": true,${' '.repeat(400)}"logprobs"`), 'walked'],
    ['again: walked, since it was not remembered', HERMES.replace('TEXT', '"l"').replace('"logprobs"', `"pad": true,${' '.repeat(400)}"logprobs"`), 'walked'],
    ['too many changing values to remember', HERMES.replace('TEXT', '"m"').replace('"logprobs"', '"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6, "g": 7, "logprobs"'), 'walked'],
    ['again: walked', HERMES.replace('TEXT', '"n"').replace('"logprobs"', '"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6, "g": 7, "logprobs"'), 'walked'],
    ['eight changing values (sequence number, delta, logprobs and five more) are remembered', HERMES.replace('TEXT', '"o"').replace('"logprobs"', '"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "logprobs"'), 'walked'],
    ['and matched', HERMES.replace('TEXT', '"p"').replace('"logprobs"', '"a": 9, "b": [2], "c": 3, "d": 4, "e": 5, "logprobs"'), 'shape']
  ]
  for (const [label, event, match] of steps) {
    const found = read(event)
    t.same(found, match === undefined ? undefined : walked(event, match), label)
    t.equal(found?.match, match, `${label}: ${String(match)}`)
  }
})

t.test('random deltas, hostile ones among them: the finder always agrees with the walk', async (t) => {
  const value = fc.constantFrom('"x"', '" you go"', '"a \\"b\\""', '""', '[]', '[{"delta":"q"}]', '1', '12345', '-0.5e3', 'null', '"oO4M"', '"delta"', '{"type":1}')
  // Bytes that may make a hostile event of a valid one: another key, a second key of a
  // delta, a value left open, a line end.
  const hostile = fc.constantFrom(
    ', "delta": "dup"', ', "type": "t"', ',"item_id":"m2"', ', "output_index": 3', ', "content_index": 1', ', "extra": 1', '[', '"', '\n', '\r\n', ' ', ',', '}', ':'
  )
  const hole = (valid: fc.Arbitrary<string>): fc.Arbitrary<string> => fc.oneof(
    { arbitrary: valid, weight: 8 }, { arbitrary: fc.tuple(value, hostile).map(([v, h]) => v + h), weight: 1 }, { arbitrary: fc.tuple(hostile, value).map(([h, v]) => h + v), weight: 1 }
  )
  const number = fc.oneof({ arbitrary: fc.nat().map(String), weight: 4 }, value)
  const text = fc.oneof({ arbitrary: fc.string().map((s) => JSON.stringify(s)), weight: 4 }, value)
  const templates = [
    'event: response.output_text.delta\ndata: {"type": "response.output_text.delta", "sequence_number": A, "item_id": "ITEM", "output_index": 0, "content_index": 0, "delta": B, "logprobs": C}\n\n',
    'event: response.output_text.delta\r\ndata:{"type":"response.output_text.delta","sequence_number":A,"item_id":"ITEM","output_index":0,"content_index":0,"delta":B,"logprobs":[],"obfuscation":C}\r\n\r\n',
    'event: response.output_text.delta\ndata: {"sequence_number":A,"type":"response.output_text.delta","content_index":0,"delta":B,"item_id":"ITEM","output_index":1,"logprobs":C}\n\n'
  ]
  const event = fc.record({ template: fc.oneof({ arbitrary: fc.constant(0), weight: 6 }, fc.constantFrom(1, 2)), item: fc.constantFrom('msg_1', 'msg_1', 'msg_1', 'msg_22'), a: hole(number), b: hole(text), c: hole(value) })
    .map(({ template, item, a, b, c }) => (templates[template] as string).replace('ITEM', item).replace('A', a).replace('B', b).replace('C', c))
  const counts = { none: 0, walked: 0, shape: 0 }
  fc.assert(fc.property(fc.array(event, { minLength: 1, maxLength: 12 }), (events) => {
    const read = finder()
    for (const text of events) {
      const found = read(text)
      counts[(found?.match ?? 'none') as keyof typeof counts]++
      const expected = walked(text, found?.match ?? 'none')
      if (JSON.stringify(found) !== JSON.stringify(expected)) return false
      // Whatever was taken is an event JSON.parse reads with the same text and identity.
      if (found !== undefined) {
        const data = JSON.parse(text.slice(text.indexOf('data:') + 5).trim()) as Record<string, unknown>
        if (data.delta !== JSON.parse(found.literal) || JSON.stringify(data.item_id) !== found.item || data.output_index !== found.output || data.content_index !== found.content) return false
      }
    }
    return true
  }), { numRuns: 2000 })
  t.ok(counts.shape > 1000 && counts.walked > 1000 && counts.none > 1000, `2000 random sequences agree (${counts.shape} deltas by their shape, ${counts.walked} walked, ${counts.none} left to the parser)`)
})
