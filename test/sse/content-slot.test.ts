import t from 'tap'
import { createContentSlotFinder, findContentSlot } from '../../src/sse/content-slot.js'
import type { ContentSlot } from '../../src/sse/content-slot.js'

const HERMES = '{"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "hermes-agent", "choices": [{"index": 0, "delta": {"content": TEXT}, "finish_reason": null}]}'
const OPENAI = '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt","system_fingerprint":"fp","choices":[{"index":2,"delta":{"content":TEXT},"logprobs":null,"finish_reason":null}],"usage":null}'

/** The event's text literal and choice index as found, or undefined. */
function find (event: string, lines = 1): { index: number, literal: string } | undefined {
  const buf = Buffer.from(event, 'utf8')
  const slot: ContentSlot = { index: -1, from: -1, to: -1, listEnd: -1 }
  const found = findContentSlot({ buf, start: 0, end: buf.length, lines }, buf.indexOf('"choices"'), slot)
  return found ? { index: slot.index, literal: buf.toString('utf8', slot.from, slot.to) } : undefined
}

const event = (shape: string, literal: string, line = 'data: ', end = '\n\n'): string => line + shape.replace('TEXT', literal) + end

t.test('the common content chunk: its literal and choice index, in the shapes real upstreams send', async (t) => {
  const rows: Array<[string, string, number, string]> = [
    ['hermes (Python separators)', event(HERMES, '"Here you go"'), 0, '"Here you go"'],
    ['OpenAI (compact, logprobs, usage after)', event(OPENAI, '"Hi"'), 2, '"Hi"'],
    ['escapes in the text', event(HERMES, '"a \\"quote\\" \\\\ \\u2014\\n"'), 0, '"a \\"quote\\" \\\\ \\u2014\\n"'],
    ['an empty text', event(HERMES, '""'), 0, '""'],
    ['UTF-8 text', event(HERMES, '"caf\u00e9 \ud83c\udf4e"'), 0, '"caf\u00e9 \ud83c\udf4e"'],
    ['no space after data:', event(OPENAI, '"x"', 'data:'), 2, '"x"'],
    ['CRLF line ends', event(OPENAI, '"x"', 'data: ', '\r\n\r\n'), 2, '"x"'],
    ['tabs and spaces around every token', 'data: {"choices" :\t[ { "index" : 7 , "delta" : { "content" : "x" } , "finish_reason" : null } ] }\n\n', 7, '"x"']
  ]
  for (const [label, text, index, literal] of rows) t.same(find(text), { index, literal }, label)
})

t.test('any other shape is left to the parser', async (t) => {
  const rows: Array<[string, string, number?]> = [
    ['a finish', event(HERMES, '"x"').replace('"finish_reason": null', '"finish_reason": "stop"')],
    ['two choices', event(OPENAI, '"x"').replace('}],"usage"', '},{"index":3,"delta":{"content":"y"},"finish_reason":null}],"usage"')],
    ['a role beside the text', event(HERMES, '"x"').replace('{"content": "x"}', '{"content": "x", "role": "assistant"}')],
    ['a role before the text', event(HERMES, '"x"').replace('{"content": "x"}', '{"role": "assistant", "content": "x"}')],
    ['content as a list of parts', event(HERMES, '[{"type": "text", "text": "x"}]')],
    ['content null', event(HERMES, 'null')],
    ['logprobs that are not null', event(OPENAI, '"x"').replace('"logprobs":null', '"logprobs":{"content":[]}')],
    ['finish_reason before the delta', 'data: {"choices":[{"index":0,"finish_reason":null,"delta":{"content":"x"}}]}\n\n'],
    ['more than one line (an id)', 'id: 1\n' + event(HERMES, '"x"'), 2],
    ['a field that only looks like data', ' ' + event(HERMES, '"x"')],
    ['data that is not one object', 'data: [' + HERMES.replace('TEXT', '"x"') + ']\n\n'],
    ['an unterminated text', 'data: {"choices": [{"index": 0, "delta": {"content": "x}]}\n\n'],
    ['an index of ten digits', event(HERMES, '"x"').replace('"index": 0', '"index": 1234567890')],
    ['a negative index', event(HERMES, '"x"').replace('"index": 0', '"index": -1')],
    ['"choices" that starts at an escaped quote in a string', 'data: {"a\\"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": null}], "choices": []}\n\n'],
    ['choices that is not a list', 'data: {"choices": {"index": 0}}\n\n']
  ]
  for (const [label, text, lines] of rows) t.equal(find(text, lines), undefined, label)
})

t.test('a finder remembers the shape of the last chunk and still reads every chunk as the field walk does', async (t) => {
  const find = createContentSlotFinder()
  const read = (event: string): { index: number, literal: string } | undefined => {
    const buf = Buffer.from(event, 'utf8')
    const slot: ContentSlot = { index: -1, from: -1, to: -1, listEnd: -1 }
    return find({ buf, start: 0, end: buf.length, lines: 1 }, slot) ? { index: slot.index, literal: buf.toString('utf8', slot.from, slot.to) } : undefined
  }
  const sequence: Array<[string, string, { index: number, literal: string } | undefined]> = [
    ['first chunk', event(HERMES, '"Here"'), { index: 0, literal: '"Here"' }],
    ['same shape', event(HERMES, '" you go"'), { index: 0, literal: '" you go"' }],
    ['same shape, escapes', event(HERMES, '"\\u2014 \\"x\\""'), { index: 0, literal: '"\\u2014 \\"x\\""' }],
    ['another choice index', event(HERMES.replace('"index": 0', '"index": 1'), '"b"'), { index: 1, literal: '"b"' }],
    ['back to the first', event(HERMES, '"c"'), { index: 0, literal: '"c"' }],
    ['a longer id moves "choices"', event(HERMES.replace('"c1"', '"chatcmpl-123456"'), '"d"'), { index: 0, literal: '"d"' }],
    ['the same prefix, then a finish', event(HERMES, '"e"').replace('"finish_reason": null', '"finish_reason": "stop"'), undefined],
    ['the same prefix, then a second choice', event(HERMES, '"f"').replace('null}]', 'null}, {"index": 1, "delta": {"content": "g"}, "finish_reason": null}]'), undefined],
    ['the same prefix, then not a data line', ': ' + event(HERMES, '"h"'), undefined],
    ['the same bytes inside a string, not a key', event(HERMES, '"i"').replace('{"id": "c1", "object"', '{"id": "c1\\\\", "object"'), { index: 0, literal: '"i"' }],
    ['OpenAI after hermes', event(OPENAI, '"j"'), { index: 2, literal: '"j"' }],
    ['a shape too long to remember', `data: {"choices": [{"index": 0,${' '.repeat(300)}"delta": {"content": "k"}, "finish_reason": null}]}\n\n`, { index: 0, literal: '"k"' }],
    ['then the OpenAI shape again', event(OPENAI, '"l"'), { index: 2, literal: '"l"' }],
    ['the same prefix, a text never closed', 'data: ' + OPENAI.slice(0, OPENAI.indexOf('TEXT')) + '"n}\n\n', undefined]
  ]
  for (const [label, text, expected] of sequence) t.same(read(text), expected, label)
  const buf = Buffer.from(event(OPENAI, '"m"'))
  t.notOk(find({ buf, start: 0, end: buf.length, lines: 2 }, { index: 0, from: 0, to: 0, listEnd: 0 }), 'an event of two lines is not taken')
})
