import t from 'tap'
import { BACKSLASH, BACKTICK, BANG, CAPITAL_M, CR, NEWLINE, SPACE, TAB, TILDE, isWordChar } from '../../src/rewrite/chars.js'

t.test('each constant is the code unit of its character', async (t) => {
  const table: Array<[number, string]> = [
    [TAB, '\t'], [NEWLINE, '\n'], [CR, '\r'], [SPACE, ' '], [BANG, '!'], [CAPITAL_M, 'M'],
    [BACKSLASH, '\\'], [BACKTICK, '`'], [TILDE, '~']
  ]
  for (const [code, char] of table) t.equal(code, char.charCodeAt(0), JSON.stringify(char))
})

t.test('word characters', async (t) => {
  for (const c of ['a', 'z', 'A', 'Z', '0', '9', '_']) t.ok(isWordChar(c.charCodeAt(0)), `${c} is a word char`)
  for (const c of [' ', '-', '\n', ':', '/', '@', '[', '`', '{', 'é']) t.notOk(isWordChar(c.charCodeAt(0)), `${JSON.stringify(c)} is not`)
})
