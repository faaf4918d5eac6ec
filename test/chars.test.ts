import t from 'tap'
import * as chars from '../src/chars.js'

const {
  BACKSLASH, BACKTICK, BANG, CAPITAL_M, CLOSE_BRACE, CLOSE_BRACKET, COLON, COMMA, CR, DIGIT_0, DIGIT_9,
  NEWLINE, OPEN_BRACE, OPEN_BRACKET, QUOTE, SLASH, SMALL_U, SPACE, TAB, TILDE, hex4, isWordChar
} = chars

t.test('each constant is the code unit of its character', async (t) => {
  const table: Array<[number, string]> = [
    [TAB, '\t'], [NEWLINE, '\n'], [CR, '\r'], [SPACE, ' '], [BANG, '!'], [CAPITAL_M, 'M'],
    [BACKSLASH, '\\'], [BACKTICK, '`'], [TILDE, '~'], [QUOTE, '"'], [COMMA, ','], [COLON, ':'],
    [DIGIT_0, '0'], [DIGIT_9, '9'], [OPEN_BRACE, '{'], [CLOSE_BRACE, '}'], [OPEN_BRACKET, '['], [CLOSE_BRACKET, ']'],
    [SLASH, '/'], [SMALL_U, 'u']
  ]
  for (const [code, char] of table) t.equal(code, char.charCodeAt(0), JSON.stringify(char))
  const constants = Object.keys(chars).filter((name) => name !== 'isWordChar' && name !== 'hex4')
  t.equal(constants.length, table.length, 'every constant is in the table')
})

t.test('word characters', async (t) => {
  for (const c of ['a', 'z', 'A', 'Z', '0', '9', '_']) t.ok(isWordChar(c.charCodeAt(0)), `${c} is a word char`)
  for (const c of [' ', '-', '\n', ':', '/', '@', '[', '`', '{', 'é']) t.notOk(isWordChar(c.charCodeAt(0)), `${JSON.stringify(c)} is not`)
})

t.test('hex4 reads the four hex digits of a \\uXXXX escape', async (t) => {
  const at = (text: string, from = 0, to = text.length): number => hex4(Buffer.from(text), from, to)
  t.equal(at('00e9'), 0xe9, 'lowercase')
  t.equal(at('00E9'), 0xe9, 'capitals')
  t.equal(at('D83C'), 0xd83c, 'half of a pair')
  t.equal(at('\\u2014', 2), 0x2014, 'from an offset')
  t.equal(at('00g9'), -1, 'not a hex digit')
  t.equal(at('00e9', 0, 3), -1, 'cut short by the end')
  t.equal(at('00:9'), -1, 'a character just past the digits')
})
