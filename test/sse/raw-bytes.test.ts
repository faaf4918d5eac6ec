import t from 'tap'
import { CLOSE_BRACE, COLON } from '../../src/chars.js'
import {
  bytesAt, endsWholeCharacter, expect, expectByte, indexEnd, isKeyStart, objectOfDataLine, readIndex, readString, skipBlanks, stringEnd, valueEnd, writeCodePoint, writeJsonText
} from '../../src/sse/raw-bytes.js'

const b = (text: string): Buffer => Buffer.from(text, 'utf8')

t.test('blanks are spaces and tabs, never line ends', async (t) => {
  const rows: Array<[string, number, number]> = [['  \tx', 0, 3], ['x', 0, 0], ['\nx', 0, 0], ['   ', 1, 3]]
  for (const [text, at, expected] of rows) t.equal(skipBlanks(b(text), at, text.length), expected, JSON.stringify(text))
  t.equal(skipBlanks(b('    x'), 0, 2), 2, 'never past the end given')
})

t.test('bytesAt compares a word, or its first bytes, where it is said to be', async (t) => {
  const buf = b('data: {"a":1}')
  t.ok(bytesAt(buf, 0, b('data:')), 'at the start')
  t.ok(bytesAt(buf, 7, b('"a"')), 'inside')
  t.ok(bytesAt(buf, 7, b('"abc'), 2), 'the first bytes of a longer word')
  t.notOk(bytesAt(buf, 6, b('"a"')), 'elsewhere')
  t.notOk(bytesAt(buf, -1, b('d')), 'before the start')
  t.notOk(bytesAt(buf, 11, b('1}x')), 'past the end')
})

t.test('expect and expectByte: the position after a word or byte, blanks first, or -1', async (t) => {
  const buf = b('  "key" :  {')
  const key = expect(buf, 0, buf.length, b('"key"'))
  t.equal(key, 7, 'after the word')
  t.equal(expectByte(buf, key, buf.length, COLON), 9, 'after the colon')
  t.equal(expect(buf, 0, buf.length, b('"kex"')), -1, 'another word')
  t.equal(expect(buf, 0, 5, b('"key"')), -1, 'a word cut by the end')
  t.equal(expect(buf, -1, buf.length, b('"key"')), -1, 'a failed step stays failed')
  t.equal(expectByte(buf, 9, buf.length, CLOSE_BRACE), -1, 'another byte')
  t.equal(expectByte(buf, 9, 10, 0x7b), -1, 'the byte past the end')
  t.equal(expectByte(buf, -1, buf.length, COLON), -1, 'a failed step stays failed')
})

t.test('stringEnd finds the quote that ends a JSON string, not an escaped one', async (t) => {
  const rows: Array<[string, number]> = [
    ['"abc" x', 5],
    ['"a\\"b" x', 6],
    ['"a\\\\" x', 5],
    ['"a\\\\\\"b" x', 8],
    ['"" x', 2],
    ['"unterminated', -1],
    ['x"abc"', -1]
  ]
  for (const [text, expected] of rows) t.equal(stringEnd(b(text), 0, text.length), expected, text)
  t.equal(stringEnd(b('"abc"'), 0, 4), -1, 'a quote past the end given does not count')
  t.equal(stringEnd(b('"abc"'), -1, 5), -1, 'a failed step stays failed')
})

t.test('indexEnd and readIndex: 1 to 9 digits', async (t) => {
  const rows: Array<[string, number, number | undefined]> = [
    ['0,', 1, 0], [' 42}', 3, 42], ['123456789,', 9, 123456789], ['1234567890,', -1, undefined], ['-1', -1, undefined], [',', -1, undefined]
  ]
  for (const [text, end, value] of rows) {
    const buf = b(text)
    t.equal(indexEnd(buf, 0, buf.length), end, `${text}: ends at ${end}`)
    if (value !== undefined) t.equal(readIndex(buf, 0, end), value, `${text}: reads ${value}`)
  }
  t.equal(indexEnd(b('12'), -1, 2), -1, 'a failed step stays failed')
})

t.test('isKeyStart: a key follows an object\'s opening brace or a comma, not text in a string', async (t) => {
  const buf = b('{"a": "x\\"b", "b": 1, \t"c": 2}')
  t.ok(isKeyStart(buf, 1, 0), 'first key')
  t.ok(isKeyStart(buf, buf.lastIndexOf('"b"'), 0), 'after a comma')
  t.ok(isKeyStart(buf, buf.indexOf('"c"'), 0), 'after a comma and blanks')
  t.notOk(isKeyStart(buf, buf.indexOf('"b"'), 0), '"b" that starts at an escaped quote inside a string')
})

t.test('objectOfDataLine: a data line holding one JSON object', async (t) => {
  const data = b('data:')
  const rows: Array<[string, number]> = [
    ['data: {"a":1}\n\n', 6],
    ['data:{"a":1}\r\n\r\n', 5],
    ['data: {"a":1}\r\r', 6],
    ['data:  {"a":1}\n\n', -1],
    [' data: {"a":1}\n\n', -1],
    ['data: [1]\n\n', -1],
    ['data: {"a":1} x\n\n', -1],
    ['event: {"a":1}\n\n', -1]
  ]
  for (const [text, expected] of rows) t.equal(objectOfDataLine(b(text), 0, text.length, data), expected, JSON.stringify(text))
})

t.test('readString: the text of a literal, decoded once, escapes by JSON\'s rules', async (t) => {
  const rows: Array<[string, string | undefined]> = [
    ['"plain words"', 'plain words'],
    ['"caf\u00e9 \ud83c\udf4e"', 'caf\u00e9 \ud83c\udf4e'],
    ['"a\\nb \\u2014 \\"q\\""', 'a\nb \u2014 "q"'],
    ['""', ''],
    ['"bad \\x escape"', undefined]
  ]
  for (const [literal, expected] of rows) {
    const buf = b(`x${literal}y`)
    t.equal(readString(buf, 1, buf.length - 1), expected, literal)
  }
})

t.test('valueEnd: just past a JSON value, by JSON\'s grammar, or -1', async (t) => {
  const rows: Array<[string, number]> = [
    ['"a\\"b" x', 6], ['0,', 1], ['-0.5e+10}', 8], ['12E3', 4], ['1.25', 4], ['-12', 3], ['true,', 4], ['false', 5], ['null]', 4],
    ['[]', 2], ['{}', 2], ['[ 1 , "a" , [ ] , { } ]', 23], ['{"a": [1, {"b": null}], "c": "]}"} x', 34], ['[\t1\t]', 5],
    ['-', -1], ['-x', -1], ['01', 1], ['1.', -1], ['1.x', -1], ['1e', -1], ['1e+', -1], ['.5', -1], ['tru', -1], ['nul', -1], ['x', -1], ['', -1],
    ['[1 2]', -1], ['[1,]', -1], ['[1', -1], ['[1}', -1], ['{"a" 1}', -1], ['{"a":}', -1], ['{a:1}', -1], ['{"a":1,}', -1], ['{"a":1 "b":2}', -1], ['["x', -1]
  ]
  for (const [text, expected] of rows) t.equal(valueEnd(b(text), 0, text.length), expected, JSON.stringify(text))
  t.equal(valueEnd(b('[1, 2]'), 0, 5), -1, 'a list closed past the end given')
  t.equal(valueEnd(b('true'), 0, 3), -1, 'a literal cut by the end')
  t.equal(valueEnd(b('1'), -1, 1), -1, 'a failed step stays failed')
  const deep = (n: number): string => '['.repeat(n) + ']'.repeat(n)
  t.equal(valueEnd(b(deep(32)), 0, 64), 64, '32 lists deep')
  t.equal(valueEnd(b(deep(33)), 0, 66), -1, 'deeper is left to the parser')
})

t.test('endsWholeCharacter: bytes that do not end inside a UTF-8 sequence', async (t) => {
  const rows: Array<[string, number[], boolean]> = [
    ['nothing', [], true],
    ['ASCII', [0x61, 0x62], true],
    ['a two-byte character', [0x61, 0xc3, 0xa9], true],
    ['a three-byte character', [0xe2, 0x80, 0x94], true],
    ['a four-byte character', [0xf0, 0x9f, 0x8d, 0x8e], true],
    ['a two-byte lead alone', [0x61, 0xc3], false],
    ['a three-byte character cut after two', [0xe2, 0x80], false],
    ['a four-byte character cut after three', [0xf0, 0x9f, 0x8d], false],
    ['a four-byte character cut after one', [0x61, 0xf0], false],
    ['a stray continuation byte after ASCII', [0x61, 0x80], true],
    ['only continuation bytes', [0x80, 0x80], true],
    ['four continuation bytes: the last is stray', [0x80, 0x80, 0x80, 0x80], true],
    ['a character then a stray continuation byte', [0xc3, 0xa9, 0x80], true]
  ]
  for (const [label, bytes, expected] of rows) {
    const buf = Buffer.from([0x78, ...bytes, 0x78])
    t.equal(endsWholeCharacter(buf, 1, 1 + bytes.length), expected, label)
    if (bytes.length > 0) {
      // What it promises: these bytes joined to the next decode as each decoded alone.
      const next = Buffer.from([0xa9, 0x61])
      const joined = Buffer.concat([Buffer.from(bytes), next]).toString('utf8') === Buffer.from(bytes).toString('utf8') + next.toString('utf8')
      if (expected) t.ok(joined, `${label}: joined, the same text`)
    }
  }
  t.notOk(endsWholeCharacter(Buffer.from([0x61, 0xe2, 0x80, 0x94]), 0, 3), 'only the range counts: its end cuts the character')
})

t.test('writeCodePoint writes UTF-8 as Node does', async (t) => {
  for (const c of [0x41, 0x7f, 0x80, 0xe9, 0x7ff, 0x800, 0x2014, 0xffff, 0x10000, 0x1f34e, 0x10ffff]) {
    const target = Buffer.alloc(4)
    const end = writeCodePoint(target, 0, c)
    t.same(target.subarray(0, end), Buffer.from(String.fromCodePoint(c), 'utf8'), `U+${c.toString(16)}`)
  }
})

t.test('writeJsonText: the text of a JSON string\'s content, in UTF-8, or -1', async (t) => {
  const rows: Array<[string, string | undefined]> = [
    ['plain words', 'plain words'],
    ['caf\u00e9 \ud83c\udf4e', 'caf\u00e9 \ud83c\udf4e'],
    ['\\u00e9\\u2014\\ud83c\\udf4e\\u0041', '\u00e9\u2014\ud83c\udf4eA'],
    ['\\uD83C\\uDF4E upper case', '\ud83c\udf4e upper case'],
    ['\\" \\\\ \\/ \\b \\f \\n \\r \\t', '" \\ / \b \f \n \r \t'],
    ['\\x', undefined],
    ['\\u00g1', undefined],
    ['\\u00e', undefined],
    ['\\ud83c', undefined],
    ['\\ud83c and then', undefined],
    ['\\ud83c\\u0041', undefined],
    ['\\ud83c\\ud83c', undefined],
    ['\\udf4e', undefined],
    ['a\\', undefined]
  ]
  for (const [content, expected] of rows) {
    const buf = Buffer.from(`"${content}"`, 'utf8')
    const target = Buffer.alloc(buf.length)
    const end = writeJsonText(buf, 1, buf.length - 1, target, 0)
    if (expected === undefined) t.equal(end, -1, `${content}: -1`)
    else t.equal(target.toString('utf8', 0, end), expected, content)
    if (expected !== undefined) t.equal(expected, JSON.parse(`"${content}"`), `${content}: as JSON.parse reads it`)
  }
})
