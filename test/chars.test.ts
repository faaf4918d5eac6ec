import t from 'tap'
import * as chars from '../src/chars.js'

const {
  BACKSLASH, BACKTICK, BANG, CAPITAL_M, CLOSE_BRACE, CLOSE_BRACKET, COLON, COMMA, CR, DIGIT_0, DIGIT_9,
  NEWLINE, OPEN_BRACE, OPEN_BRACKET, QUOTE, SLASH, SMALL_U, SPACE, TAB, TILDE, isWordChar
} = chars

t.test('each constant is the code unit of its character', async (t) => {
  const table: Array<[number, string]> = [
    [TAB, '\t'], [NEWLINE, '\n'], [CR, '\r'], [SPACE, ' '], [BANG, '!'], [CAPITAL_M, 'M'],
    [BACKSLASH, '\\'], [BACKTICK, '`'], [TILDE, '~'], [QUOTE, '"'], [COMMA, ','], [COLON, ':'],
    [DIGIT_0, '0'], [DIGIT_9, '9'], [OPEN_BRACE, '{'], [CLOSE_BRACE, '}'], [OPEN_BRACKET, '['], [CLOSE_BRACKET, ']'],
    [SLASH, '/'], [SMALL_U, 'u']
  ]
  for (const [code, char] of table) t.equal(code, char.charCodeAt(0), JSON.stringify(char))
  const constants = Object.keys(chars).filter((name) => name !== 'isWordChar')
  t.equal(constants.length, table.length, 'every constant is in the table')
})

t.test('word characters', async (t) => {
  for (const c of ['a', 'z', 'A', 'Z', '0', '9', '_']) t.ok(isWordChar(c.charCodeAt(0)), `${c} is a word char`)
  for (const c of [' ', '-', '\n', ':', '/', '@', '[', '`', '{', 'é']) t.notOk(isWordChar(c.charCodeAt(0)), `${JSON.stringify(c)} is not`)
})
