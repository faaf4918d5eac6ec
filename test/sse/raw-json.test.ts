import t from 'tap'
import { createFinder, replaceData, replaceStrings } from '../../src/sse/raw-json.js'

t.test('replaceStrings edits only the string values named, in order, keeping every other byte', async (t) => {
  const json = '{"id": "a", "choices": [{"delta": {"content" :  "x\\u00e9", "p": 1}}, {"delta": {"content":"y"}}], "note": "content"}'
  t.equal(replaceStrings(json, 'content', [['xé', 'X'], ['y', 'Y\n']]),
    '{"id": "a", "choices": [{"delta": {"content" :  "X", "p": 1}}, {"delta": {"content":"Y\\n"}}], "note": "content"}',
    'both values replaced where they were; spacing, escapes elsewhere and the other fields kept')
  t.equal(replaceStrings('{"content": null, "x": {"content": "a"}}', 'content', [['a', 'b']]), '{"content": null, "x": {"content": "b"}}', 'a key whose value is no string is skipped')
  t.equal(replaceStrings('{"content" 1, "content": "a"}', 'content', [['a', 'b']]), '{"content" 1, "content": "b"}', 'a key without a colon is skipped')
  t.equal(replaceStrings('{"content": "say \\"hi\\"\\\\", "content": "a"}', 'content', [['a', 'b']]), '{"content": "say \\"hi\\"\\\\", "content": "b"}', 'escaped quotes and backslashes inside a value')
  t.equal(replaceStrings('{"content": "other"}', 'content', [['a', 'b']]), undefined, 'a value not found: undefined')
  t.equal(replaceStrings('{"content": "unterminated', 'content', [['a', 'b']]), undefined, 'an unterminated string: undefined')
})

t.test('replaceData swaps the data of a one-line event, keeping its other lines', async (t) => {
  t.equal(replaceData(': c\r\nevent: e\r\ndata:{"a":1}\r\n\r\n', '{"a":1}', '{"a":2}'), ': c\r\nevent: e\r\ndata:{"a":2}\r\n\r\n', 'no space after the colon, CRLF kept')
  t.equal(replaceData('\ufeffdata: a data: b\n\n', 'a data: b', 'c'), '\ufeffdata: c\n\n', 'after the stream BOM, and data that itself holds "data:"')
  t.equal(replaceData('data: a\ndata: b\n\n', 'a\nb', 'c'), undefined, 'data over several lines: undefined')
})

t.test('a finder scans a read once for all its events', async (t) => {
  const find = createFinder('"content"')
  const buf = Buffer.from('data: {"role": 1}\n\ndata: {"content": 2}\n\ndata: {}\n\n')
  const events = [[0, 19], [19, 42], [42, 52]] as const
  t.same(events.map(([start, end]) => find({ buf, start, end, lines: 1 })), [-1, 26, -1], 'found only inside the event that holds it')
  const other = Buffer.from('data: {"content": 3}\n\n')
  t.equal(find({ buf: other, start: 0, end: other.length, lines: 1 }), 7, 'a new read is searched anew')
  t.equal(find({ buf, start: 0, end: 19, lines: 1 }), -1, 'and an earlier event of an older read too')
})

t.test('a finder anchored past its first bytes finds the whole string only', async (t) => {
  const find = createFinder('"error"', 2)
  const buf = Buffer.from('data: {"terror": 1}\n\ndata: {"mirror":2}\n\ndata: {"error": 3}\n\n')
  const events = [[0, 21], [21, 41], [41, 61]] as const
  t.same(events.map(([start, end]) => find({ buf, start, end, lines: 1 })), [-1, -1, 48], 'not where only the anchored part is')
  const first = Buffer.from('"error"')
  t.equal(find({ buf: first, start: 0, end: first.length, lines: 1 }), 0, 'at the very start of a read')
  const cut = Buffer.from('or"')
  t.equal(find({ buf: cut, start: 0, end: cut.length, lines: 1 }), -1, 'not when the anchored part starts the read')
})
