import t from 'tap'
import { createDeltaFinders, findDeltaSlot } from '../../src/sse/delta-slot.js'
import type { DeltaSlot } from '../../src/sse/delta-slot.js'

/** The delta's literal, item literal and indices as found, or undefined. */
function find (event: string, lines = 2): { item: string, output: number, content: number, literal: string } | undefined {
  const buf = Buffer.from(event, 'utf8')
  const slot: DeltaSlot = { itemFrom: -1, itemTo: -1, outputIndex: -1, contentIndex: -1, from: -1, to: -1 }
  if (!findDeltaSlot({ buf, start: 0, end: buf.length, lines }, createDeltaFinders(), slot)) return undefined
  return { item: buf.toString('utf8', slot.itemFrom, slot.itemTo), output: slot.outputIndex, content: slot.contentIndex, literal: buf.toString('utf8', slot.from, slot.to) }
}

const HERMES = 'event: response.output_text.delta\ndata: {"type": "response.output_text.delta", "sequence_number": 5, "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": TEXT, "logprobs": []}\n\n'
// OpenAI sorts the keys in some streams: the delta comes before the item.
const SORTED = 'event: response.output_text.delta\r\ndata:{"type":"response.output_text.delta","content_index":1,"delta":TEXT,"item_id":"msg_2","logprobs":[{"token":"delta","bytes":[1]}],"obfuscation":"x","output_index":3,"sequence_number":4}\r\n\r\n'

t.test('a text delta: its literal, item and indices, whatever the key order and line ends', async (t) => {
  t.same(find(HERMES.replace('TEXT', '"Here you go"')), { item: '"msg_1"', output: 0, content: 0, literal: '"Here you go"' }, 'hermes')
  t.same(find(SORTED.replace('TEXT', '"a \\"b\\" \\u2014"')), { item: '"msg_2"', output: 3, content: 1, literal: '"a \\"b\\" \\u2014"' }, 'OpenAI, keys sorted, CRLF')
  t.same(find(HERMES.replace('TEXT', '"x"').replace('event: ', 'event:')), { item: '"msg_1"', output: 0, content: 0, literal: '"x"' }, 'no space after event:')
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
    ['"delta" first seen as a value in a list', delta.replace('"type": ', '"tags": [1, "delta"], "type": ')],
    ['three lines', delta.replace('\ndata:', '\nid: 1\ndata:'), 3],
    ['data that is not one object', delta.replace('data: {', 'data: [{').replace('}\n\n', '}]\n\n')],
    ['a delta that is not a string', HERMES.replace('TEXT', '["x"]')],
    ['no item id', delta.replace('"item_id": "msg_1", ', '')],
    ['an item id that is not a string', delta.replace('"msg_1"', '7')],
    ['no output index', delta.replace('"output_index": 0, ', '')],
    ['an output index that is not a number', delta.replace('"output_index": 0', '"output_index": "0"')],
    ['no content index', delta.replace('"content_index": 0, ', '')],
    ['a delta key only in a string', delta.replace('"delta": "x"', '"text": "\\"delta\\": 1"')],
    ['an event cut inside the data', delta.slice(0, delta.indexOf('"logprobs"'))]
  ]
  for (const [label, text, lines] of rows) t.equal(find(text, lines), undefined, label)
})
