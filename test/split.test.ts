// The cutting helpers of test/fixtures/split.ts: the chunking tests are only as good as
// the pieces these make.
import t from 'tap'
import fc from 'fast-check'
import { cutAt, inTurns, splitBytes, splitText } from './fixtures/split.js'

t.test('cutAt cuts at each offset once, in order, strings, bytes and arrays alike', async (t) => {
  t.same(cutAt('abcdef', [4, 1, 4]), ['a', 'bcd', 'ef'], 'any order, an offset given twice cuts once')
  t.same(cutAt('abc', [0, 3]), ['', 'abc', ''], 'at 0 and at the length: an empty first and last piece')
  t.same(cutAt('abc', []), ['abc'], 'no offset: the whole')
  const bytes = Buffer.from('héllo')
  const pieces = cutAt(bytes, [2])
  t.same(pieces.map((piece) => [...piece]), [[0x68, 0xc3], [0xa9, 0x6c, 0x6c, 0x6f]], 'bytes, even inside a character')
  t.equal(pieces[0]?.buffer, bytes.buffer, 'as views of the bytes, not copies')
  t.same(cutAt(['a', 'b', 'c'], [1]), [['a'], ['b', 'c']], 'arrays')
})

t.test('splitText gives pieces that join back to the text, cut anywhere inside it', async (t) => {
  let cutInside = 0
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 20 }).chain((value) => fc.tuple(fc.constant(value), splitText(value, 12))), ([value, pieces]) => {
    if (pieces.length > 1) cutInside++
    return pieces.join('') === value && pieces.length <= 13 && (value.length === 0 || pieces.every((piece) => piece.length > 0))
  }), { numRuns: 500 })
  t.ok(cutInside > 100, `texts were cut (${cutInside})`)
})

t.test('inTurns and splitBytes: pieces of 1 to max units in turn', async (t) => {
  t.same(inTurns('abcdefghij', 3), ['a', 'bc', 'def', 'g', 'hi', 'j'], '1, 2, 3, 1, 2 and the rest')
  t.same(splitBytes('x'.repeat(30)).map((piece) => piece.length), [1, 2, 3, 4, 5, 6, 7, 1, 1], '1 to 7 bytes by default')
  const text = 'data: 🍎\r\n\r\n'
  t.equal(Buffer.concat(splitBytes(text)).toString(), text, 'joined back, the text')
})
