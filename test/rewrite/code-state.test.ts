import t from 'tap'
import fc from 'fast-check'
import { createCodeState, plainEscapeLength } from '../../src/rewrite/code-state.js'
import type { CodeState, Place } from '../../src/rewrite/code-state.js'
import { splitText } from '../fixtures/split.js'

/** Feeds `text` one character at a time. */
function feed (state: CodeState, text: string): void {
  for (let i = 0; i < text.length; i++) state.advance(text.charCodeAt(i))
}

/** Where a reference starting at `text[at]` would stand, given the text before it. */
function placeAt (text: string, at: number): Place {
  const state = createCodeState()
  feed(state, text.slice(0, at))
  return state.place()
}

const MARK: Record<Place, string> = { text: '.', code: 'c', escaped: 'e' }

/**
 * A map of `text`, one mark per character: whether a reference starting there would be
 * in code (`c`), escaped by a backslash (`e`) or in text (`.`). Line feeds are kept, so
 * the map reads line by line like the text.
 */
function codeMap (text: string): string {
  let map = ''
  for (let i = 0; i < text.length; i++) map += text[i] === '\n' ? '\n' : MARK[placeAt(text, i)]
  return map
}

t.test('fenced code blocks (CommonMark 4.5)', async (t) => {
  const rows: Array<[string, string, string]> = [
    ['backticks', '```\nx\n```\ny', '.cc\nc\nccc\n.'],
    ['tildes (one or two open nothing)', '~~~\nx\n~~~\ny', '...\nc\nccc\n.'],
    ['four backticks are not closed by three', '````\nx\n```\ny\n````\nz', '.ccc\nc\nccc\nc\ncccc\n.'],
    ['three backticks are closed by five (or by the first three of them)', '```\nx\n`````\ny', '.cc\nc\nccc..\n.'],
    ['tildes do not close backticks', '```\n~~~\nx\n```\ny', '.cc\nccc\nc\nccc\n.'],
    ['backticks do not close tildes', '~~~\n```\nx\n~~~\ny', '...\nccc\nc\nccc\n.'],
    ['an info string is code', '```js x\nx\n```\ny', '.cccccc\nc\nccc\n.'],
    ['a tilde fence may have backticks in its info string', '~~~ a`b\nx\n~~~\ny', '...cccc\nc\nccc\n.'],
    ['opened and closed three spaces in', '   ```\nx\n   ```\ny', '....cc\nc\ncccccc\n.'],
    ['a closing run four spaces in closes nothing', '```\nx\n    ```\ny', '.cc\nc\nccccccc\nc'],
    ['a blank line does not end a fence', '```\n\nx', '.cc\n\nc'],
    ['a run after text is a code span, not a fence', 'a ```\nb ``` c', '...cc\nccccc..']
  ]
  for (const [name, text, map] of rows) t.equal(codeMap(text), map, `${name}: ${JSON.stringify(text)}`)
})

t.test('code spans (CommonMark 6.1)', async (t) => {
  const rows: Array<[string, string, string]> = [
    ['one backtick', 'a `b` c', '...cc..'],
    ['two backticks closed by exactly two', 'a ``b`c`` d', '...cccccc..'],
    ['a longer run does not close a shorter span', 'a `b`` c` d', '...cc.ccc..'],
    ['a span goes on over a line break', 'a `b\nc` d', '...c\ncc..'],
    ['a blank line abandons an unclosed span', 'a `b\n\nc` d', '...c\n\n..cc'],
    ['so does a line of spaces', 'a `b\n  \nc', '...c\ncc\n.'],
    ['an unclosed span keeps its paragraph in code', 'a `b\nc\nd', '...c\nc\nc']
  ]
  for (const [name, text, map] of rows) t.equal(codeMap(text), map, `${name}: ${JSON.stringify(text)}`)
})

t.test('indented code blocks and lists (CommonMark 4.4, 5.2)', async (t) => {
  const rows: Array<[string, string, string]> = [
    ['four spaces at the start', '    x', '....c'],
    ['after a blank line, and the lines after it', 'p\n\n    x\n    y\nz', '.\n\n....c\n....c\n.'],
    ['a tab counts four', 'p\n\n\tx', '.\n\n.c'],
    ['an indented line goes on with its paragraph', 'p\n    x', '.\n.....'],
    ['backticks in indented code open nothing', '    `a\n\nb', '....cc\n\n.'],
    ['four spaces before a fence make indented code, not a fence', '    ```\nx', '....ccc\n.'],
    ['indented under a list item is the item', '- item\n\n    x', '......\n\n.....'],
    ['so under an ordered list', '1. one\n\n    x', '......\n\n.....'],
    ['and under * and + items', '* a\n+ b\n\n    x', '...\n...\n\n.....'],
    ['a list goes on over blank lines with indented lines', '- a\n\n    b\n\n    x', '...\n\n.....\n\n.....'],
    ['a paragraph after a blank line ends the list', '- a\n\np\n\n    x', '...\n\n.\n\n....c']
  ]
  for (const [name, text, map] of rows) t.equal(codeMap(text), map, `${name}: ${JSON.stringify(text)}`)
})

t.test('backslash escapes exist outside code only (CommonMark 2.4)', async (t) => {
  const rows: Array<[string, string, string]> = [
    ['an escaped bang', '\\!', '.e'],
    ['an escaped backslash escapes nothing after it', '\\\\!', '.e.'],
    ['an escaped backtick opens nothing', '\\`a` b', '.e..cc'],
    ['an escaped fence is a literal backtick and a span of two, abandoned at a blank line', '\\```\n\nx', '.e.c\n\n.'],
    ['a backslash in a span does not escape its closing run', '`\\`a', '.cc.'],
    ['a backslash in a fence escapes nothing', '```\n\\!', '.cc\ncc'],
    ['an escape ends with its line', '\\\n!', '.\n.']
  ]
  for (const [name, text, map] of rows) t.equal(codeMap(text), map, `${name}: ${JSON.stringify(text)}`)
})

t.test('carriage returns', async (t) => {
  const rows: Array<[string, string, string]> = [
    ['CRLF lines open and close a fence', '```\r\nx\r\n```\r\ny', '.ccc\ncc\nccc.\n.'],
    ['a CRLF blank line abandons a span', 'a `b\r\n\r\nc', '...cc\nc\n.'],
    ['a CR is no indentation', 'p\r\n\r\n   \rx', '..\n.\n.....'],
    ['while four spaces after a CRLF blank line are', 'p\r\n\r\n    x', '..\n.\n....c']
  ]
  for (const [name, text, map] of rows) t.equal(codeMap(text), map, `${name}: ${JSON.stringify(text)}`)
})

t.test('the character before a reference', async (t) => {
  const after = (text: string): boolean => {
    const state = createCodeState()
    feed(state, text)
    return state.afterWord()
  }
  for (const text of ['', 'SOCIAL', 'x_', '9', '`a']) t.equal(after(text), text.length > 0, `${JSON.stringify(text)}: a MEDIA tag there is ${text.length > 0 ? 'part of a word' : 'a tag'}`)
  for (const text of ['a ', 'a-', 'é', 'a\n', 'a`', '~', '\\']) t.notOk(after(text), `${JSON.stringify(text)}: a MEDIA tag there is a tag`)
  const plain = createCodeState()
  plain.advancePlain('see ')
  t.notOk(plain.afterWord(), 'advancePlain: after a space')
  plain.advancePlain('SOCIAL')
  t.ok(plain.afterWord(), 'advancePlain: after a letter')
})

t.test('the state after a reference', async (t) => {
  /** A reference ending in `last` taken at the start of a line, then `text`. */
  const afterReference = (last: string, text: string): CodeState => {
    const state = createCodeState()
    t.equal(state.place(), 'text', 'a reference is taken in text only')
    state.afterReference(last.charCodeAt(0))
    feed(state, text)
    return state
  }
  t.ok(afterReference('x', '').afterWord(), 'ends in a word character')
  t.notOk(afterReference(')', '').afterWord(), 'ends in a parenthesis')
  t.equal(afterReference(')', '\n    ').place(), 'text', 'its line is not blank: an indented line after it goes on with the paragraph')
  t.equal(afterReference(')', '```\n\n').place(), 'text', 'a run after it is not at a line start: a span, abandoned at the blank line')
  const escaped = createCodeState()
  feed(escaped, '\\')
  escaped.afterReference(0x29)
  t.equal(escaped.place(), 'text', 'no escape survives a reference')
})

// Texts mixing everything that changes the code state with plain words, so that many
// pieces hold none of it and go through advancePlain.
const fragment = fc.constantFrom(
  '`', '``', '```', '~~~', '~', '\n', '\n\n', '\r\n', '\r', '\\', ' ', '   ', '    ', '\t', '- ', '1. ', '* ',
  'text', 'word ', '!', 'M', 'MEDIA:', 'é', '🍎', '_'
)
const text = fc.array(fragment, { maxLength: 24 }).map((parts) => parts.join(''))

/** What the rewriter looks at one by one: reference starts and code syntax. */
const SPECIAL = /[!M`~\\\n\r]/

/**
 * Feeds pieces the way the rewriter does: a piece without special characters through
 * advancePlain, any other character by character, asking `place` before each `!` and
 * `M` (where a reference could start) and then feeding that character as usual.
 */
function feedPieces (state: CodeState, pieces: string[], bytes = false): number {
  let plain = 0
  for (const piece of pieces) {
    if (!SPECIAL.test(piece)) {
      if (bytes) {
        // Inside a longer buffer, as the streaming path finds a delta's text in its event.
        const buf = Buffer.from(`"${piece}"`)
        state.advancePlainBytes(buf, 1, buf.length - 1)
      } else {
        state.advancePlain(piece)
      }
      plain++
      continue
    }
    for (let i = 0; i < piece.length; i++) {
      const c = piece.charCodeAt(i)
      if (c === 0x21 || c === 0x4d) state.place()
      state.advance(c)
    }
  }
  return plain
}

for (const bytes of [false, true]) {
  t.test(`text fed in pieces leaves the state it leaves fed whole${bytes ? ', plain pieces as UTF-8 bytes' : ''}`, async (t) => {
    let plainPieces = 0
    fc.assert(fc.property(text.chain((value) => fc.tuple(fc.constant(value), splitText(value, 10), text)), ([value, pieces, probe]) => {
      // Equal states answer alike whatever follows: compare where a reference would stand
      // at every position of a probe text fed after them, and whether it follows a word.
      plainPieces += feedPieces(createCodeState(), pieces, bytes)
      for (let at = 0; at <= probe.length; at++) {
        const split = createCodeState()
        feedPieces(split, pieces, bytes)
        feed(split, probe.slice(0, at))
        const whole = createCodeState()
        feed(whole, value + probe.slice(0, at))
        if (split.afterWord() !== whole.afterWord() || split.place() !== whole.place()) return false
      }
      return true
    }), { numRuns: 1000 })
    t.ok(plainPieces > 500, `advancePlain took part (${plainPieces} plain pieces)`)
  })
}

// What advancePlain and advancePlainBytes accept: no backtick, tilde, backslash, CR or
// line feed. Indents and list markers make the line-start characters count; any other
// character of Unicode, ASCII or several UTF-8 bytes long, may follow.
const plainText = fc.array(fc.oneof(
  fc.constantFrom(' ', '    ', '\t', '- ', '1. ', '* ', 'word', '_', '!', 'M', 'é', '🍎'),
  fc.string({ unit: 'binary', maxLength: 4 }).map((value) => value.replace(/[`~\\\r\n]/g, ''))
), { minLength: 1, maxLength: 8 }).map((parts) => parts.join(''))

/**
 * Whether `plain` given to advancePlain and `bytes` given to advancePlainBytes, after
 * `before`, leave states that place a reference alike at every point of `probe` after them.
 */
function sameAfter (before: string, plain: string, bytes: Uint8Array, probe: string): boolean {
  for (let at = 0; at <= probe.length; at++) {
    const asText = createCodeState()
    feed(asText, before)
    asText.advancePlain(plain)
    feed(asText, probe.slice(0, at))
    const asBytes = createCodeState()
    feed(asBytes, before)
    asBytes.advancePlainBytes(bytes, 0, bytes.length)
    feed(asBytes, probe.slice(0, at))
    if (asText.afterWord() !== asBytes.afterWord() || asText.place() !== asBytes.place()) return false
  }
  return true
}

t.test('advancePlain and advancePlainBytes, twins, leave the same state for the same text', async (t) => {
  let multiByte = 0
  fc.assert(fc.property(text, plainText, text, (before, plain, probe) => {
    const buf = Buffer.from(`"${plain}"`)
    if (buf.length - 2 > plain.length) multiByte++
    return sameAfter(before, plain, buf.subarray(1, buf.length - 1), probe)
  }), { numRuns: 1000 })
  t.ok(multiByte > 200, `texts with multi-byte characters took part (${multiByte})`)
})

/**
 * `text` as the content of a JSON string written with ASCII only, as Python's json.dumps
 * writes it: every character past ASCII a `\uXXXX` escape (an emoji two of them); with
 * `slashes`, `/` as `\/` too, as PHP writes it.
 */
function asciiJson (text: string, slashes: boolean): Buffer {
  let out = JSON.stringify(text).slice(1, -1).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  if (slashes) out = out.replaceAll('/', '\\/')
  return Buffer.from(out)
}

t.test('advancePlainBytes reads the plain escapes of a JSON string as the characters they stand for', async (t) => {
  let escapes = 0
  const withQuotes = plainText.map((plain) => plain.replace(/_/g, '"').replace(/\*/g, '/'))
  fc.assert(fc.property(text, withQuotes, fc.boolean(), text, (before, plain, slashes, probe) => {
    const buf = asciiJson(plain, slashes)
    // A tab or a control character is an escape the rewriter does not take as plain.
    for (let i = buf.indexOf(0x5c); i !== -1; i = buf.indexOf(0x5c, i + 2)) if (plainEscapeLength(buf, i, buf.length) === 0) return true
    if (buf.includes(0x5c)) escapes++
    return sameAfter(before, plain, buf, probe)
  }), { numRuns: 1000 })
  t.ok(escapes > 300, `texts with escapes took part (${escapes})`)
  // The word before a `MEDIA:` tag decides whether it is one: an escape ends no word.
  for (const [plain, word] of [['caf\\u00e9', false], ['cafe', true], ['a\\/', false], ['a\\"', false], ['\\u00e9a', true], ['x\\u00e9\\u00e9', false], ['\\u00e9', false]] as const) {
    const state = createCodeState()
    state.advance(0x20)
    const buf = Buffer.from(plain)
    state.advancePlainBytes(buf, 0, buf.length)
    t.equal(state.afterWord(), word, `after ${plain}: ${word ? '' : 'no '}word`)
  }
})

t.test('plainEscapeLength takes only escapes of characters no rule looks at', async (t) => {
  const cases: Array<[content: string, length: number, why: string]> = [
    ['\\u00e9', 6, 'an accent'],
    ['\\u2014', 6, 'a dash'],
    ['\\ud83c', 6, 'half of an emoji'],
    ['\\u00E9', 6, 'hex in capitals'],
    ['\\"', 2, 'a quote'],
    ['\\/', 2, 'a slash'],
    ['\\u0021', 0, 'an ASCII "!" (a reference may start)'],
    ['\\u004d', 0, 'an ASCII "M"'],
    ['\\u007f', 0, 'the last ASCII character'],
    ['\\u0060', 0, 'a backtick'],
    ['\\\\', 0, 'a backslash (a Markdown escape)'],
    ['\\n', 0, 'a line feed'],
    ['\\r', 0, 'a carriage return'],
    ['\\t', 0, 'a tab (an indent)'],
    ['\\b', 0, 'a backspace'],
    ['\\u00g9', 0, 'not hex'],
    ['\\u00e', 0, 'cut short by the end'],
    ['\\', 0, 'a backslash alone at the end']
  ]
  for (const [content, length, why] of cases) {
    const buf = Buffer.from(content)
    t.equal(plainEscapeLength(buf, 0, buf.length), length, `${content}: ${length} (${why})`)
  }
  t.equal(plainEscapeLength(Buffer.from('\\u00e9'), 0, 5), 0, 'an escape the range cuts')
})
