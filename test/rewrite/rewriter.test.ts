import t from 'tap'
import fc from 'fast-check'
import { createRewriter, DEFAULT_MAX_HOLD } from '../../src/rewrite/rewriter.js'
import type { RewriteEvent, RewriterOptions } from '../../src/rewrite/rewriter.js'
import { DELIVERABLE, fakeResolve } from '../fixtures/resolve.js'
import { splitText } from '../fixtures/split.js'

const resolve = fakeResolve(DELIVERABLE)
/** The whole text through one rewriter: what every split of it must give. */
function whole (text: string, options: RewriterOptions = { resolve }): string {
  const rewriter = createRewriter(options)
  return rewriter.push(text) + rewriter.end()
}
const URL_X = 'http://gate.test/images/x.png'

/** Streams `pieces` through one rewriter; returns every output piece. */
function stream (pieces: string[], maxHold?: number): string[] {
  const rewriter = createRewriter({ resolve, ...(maxHold !== undefined ? { maxHold } : {}) })
  const out = pieces.map((piece) => rewriter.push(piece))
  out.push(rewriter.end())
  return out
}

t.test('rewrites deliverable references, keeps everything else', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['plain image', '![a](/c/x.png)', `![a](${URL_X})`],
    ['title kept', '![a](/c/x.png "the title")', `![a](${URL_X} "the title")`],
    ['single-quoted title', "![a](/c/x.png 't')", `![a](${URL_X} 't')`],
    ['paren title', '![a](/c/x.png (t))', `![a](${URL_X} (t))`],
    ['angle destination with spaces', '![a](</c/a b.png>)', '![a](http://gate.test/images/a%20b.png)'],
    ['nested brackets in alt', '![a [b] c](/c/x.png)', `![a [b] c](${URL_X})`],
    ['escaped bracket in alt', '![a \\] b](/c/x.png)', `![a \\] b](${URL_X})`],
    ['windows path', '![w](C:\\Users\\u\\x.png)', `![w](${URL_X})`],
    ['file URL', '![f](file:///c/x.png)', `![f](${URL_X})`],
    ['text around', 'see ![a](/c/x.png) here', `see ![a](${URL_X}) here`],
    ['two references', '![a](/c/x.png)![b](/c/x.png)', `![a](${URL_X})![b](${URL_X})`],
    ['MEDIA image', 'MEDIA:/c/x.png', `![x.png](${URL_X})`],
    ['MEDIA audio is a link', 'MEDIA:/c/song.mp3', '[song.mp3](http://gate.test/images/song.mp3)'],
    ['MEDIA trailing period', 'MEDIA:/c/x.png.', `![x.png](${URL_X}).`],
    ['MEDIA backticked', 'MEDIA:`/c/a b.png`', '![a b.png](http://gate.test/images/a%20b.png)'],
    ['MEDIA quoted', 'MEDIA:"/c/x.png" ok', `![x.png](${URL_X}) ok`],
    ['MEDIA space after colon', 'MEDIA: /c/x.png\n', `![x.png](${URL_X})\n`],
    ['MEDIA after newline', 'Done.\n\nMEDIA:/c/x.png\n\nbye', `Done.\n\n![x.png](${URL_X})\n\nbye`]
  ]
  for (const [name, input, expected] of cases) t.equal(whole(input), expected, name)
})

t.test('leaves non-deliverable and non-references byte-for-byte', async (t) => {
  const cases: Array<[string, string]> = [
    ['not deliverable', '![a](/etc/passwd)'],
    ['missing', '![a](/c/missing.png)'],
    ['http URL', '![a](https://example.com/x.png)'],
    ['relative', '![a](x.png)'],
    ['link, not image', '[a](/c/x.png)'],
    ['escaped bang', '\\![a](/c/x.png)'],
    ['space before paren', '![a] (/c/x.png)'],
    ['unclosed', '![a](/c/x.png'],
    ['newline in alt', '![a\nb](/c/x.png)'],
    ['backtick in alt', '![a`b](/c/x.png)'],
    ['junk after dest', '![a](/c/x.png junk)'],
    ['MEDIA inside a word', 'SOCIALMEDIA:/c/x.png'],
    ['MEDIA media in markdown image', '![s](/c/song.mp3)'],
    ['MEDIA empty', 'MEDIA: \n'],
    ['MEDIA unclosed quote', 'MEDIA:"/c/x.png\nx"'],
    ['inline code', 'use `![a](/c/x.png)` like this'],
    ['double backtick code', '``MEDIA:/c/x.png ` still``'],
    ['fenced code', '```md\n![a](/c/x.png)\n```'],
    ['tilde fence', '~~~\nMEDIA:/c/x.png\n~~~'],
    ['indented fence', '   ```\n![a](/c/x.png)\n   ```'],
    ['longer fence not closed by shorter', '````\n```\n![a](/c/x.png)\n````'],
    ['indented code after a blank line', 'Example:\n\n    ![a](/c/x.png)\n'],
    ['indented code with a tab', 'Example:\n\n\tMEDIA:/c/x.png\n'],
    ['indented code at the start', '    ![a](/c/x.png)'],
    ['indented code continues', '    code\n    ![a](/c/x.png)'],
    ['backticks in indented code open nothing', '    `\n\nx ![a](/c/x.png'],
    ['title across lines', '![a](/c/x.png\n"t")'],
    ['lone bang', 'wow!'],
    ['bang at end', 'wow ![']
  ]
  for (const [name, input] of cases) t.equal(whole(input), input, name)
})

t.test('code state ends where CommonMark ends it', async (t) => {
  t.equal(whole('`code`\n![a](/c/x.png)'), `\`code\`\n![a](${URL_X})`, 'after a closed span')
  t.equal(whole('```\ncode\n```\n![a](/c/x.png)'), `\`\`\`\ncode\n\`\`\`\n![a](${URL_X})`, 'after a closed fence')
  t.equal(whole('an ` unclosed\n\n![a](/c/x.png)'), `an \` unclosed\n\n![a](${URL_X})`, 'a blank line ends an unclosed span')
  t.equal(whole('an ` unclosed\r\n\r\n![a](/c/x.png)'), `an \` unclosed\r\n\r\n![a](${URL_X})`, 'so does a blank CRLF line')
  t.equal(whole('Example:\r\n\r\n   \r![a](/c/x.png)'), `Example:\r\n\r\n   \r![a](${URL_X})`, 'a CR is not indentation')
  t.equal(whole('\\`not code ![a](/c/x.png)'), `\\\`not code ![a](${URL_X})`, 'escaped backtick opens nothing')
  t.equal(whole('    ```\n![a](/c/x.png)'), `    \`\`\`\n![a](${URL_X})`, 'four spaces: indented code, so the backticks open nothing')
  t.equal(whole('para\n    ![a](/c/x.png)'), `para\n    ![a](${URL_X})`, 'an indented line continues a paragraph, it is not code')
  t.equal(whole('- item\n\n    ![a](/c/x.png)'), `- item\n\n    ![a](${URL_X})`, 'indented under a list item is the item, not code')
  t.equal(whole('1. one\n\n    MEDIA:/c/x.png'), `1. one\n\n    ![x.png](${URL_X})`, 'also under an ordered list')
  t.equal(whole('- item\n\npara\n\n    ![a](/c/x.png)'), '- item\n\npara\n\n    ![a](/c/x.png)', 'a paragraph after a blank line ends the list')
})

t.test('text that cannot start a reference is never held', async (t) => {
  const rewriter = createRewriter({ resolve })
  t.equal(rewriter.push('Here you go'), 'Here you go', 'plain text out at once')
  t.equal(rewriter.push(' — 🍎:\n\n'), ' — 🍎:\n\n', 'unicode out at once')
  t.equal(rewriter.push('!['), '', 'a possible reference is held')
  t.ok(rewriter.holding, 'holding')
  t.equal(rewriter.push('a](/c/x'), '', 'still possible')
  t.equal(rewriter.push('.png) and'), `![a](${URL_X}) and`, 'released rewritten with the text after it')
  t.notOk(rewriter.holding, 'nothing held')
  t.equal(rewriter.push('Wow! Nice'), 'Wow! Nice', 'a bang followed by a space is released in the same piece')
  t.equal(rewriter.push(' M'), ' ', 'a capital M might start MEDIA:')
  t.equal(rewriter.push('y'), 'My', 'and is released at the next character')
  t.equal(rewriter.end(), '', 'nothing left')
})

t.test('plain text given as UTF-8 bytes is taken undecoded; anything else is left to push', async (t) => {
  const bytes = (text: string): [Buffer, number, number] => {
    const buf = Buffer.from(`{"content": "${text}"}`)
    return [buf, 13, buf.length - 2]
  }
  const rewriter = createRewriter({ resolve })
  t.ok(rewriter.pushPlainBytes(...bytes('Here you go \u2014 caf\u00e9 ')), 'plain words are taken')
  for (const special of ['Wow!', 'Mo', 'a `b`', '~~~', 'a\\b', 'a\nb', 'a\rb']) {
    t.notOk(rewriter.pushPlainBytes(...bytes(special)), `not with ${JSON.stringify(special)}`)
  }
  // As a backend that writes JSON in ASCII sends them (hermes, through Python's json.dumps).
  t.ok(rewriter.pushPlainBytes(...bytes('Voil\\u00e0 \\u2014 une pomme \\ud83c\\udf4e ')), 'accents, a dash and an emoji as escapes')
  t.ok(rewriter.pushPlainBytes(...bytes('\\"a\\/b\\" ')), 'escaped quotes and slashes')
  for (const escape of ['\\u0021', '\\u004d', '\\u0060', '\\\\', '\\n', '\\t', '\\u000a', '\\u00e', '\\x']) {
    t.notOk(rewriter.pushPlainBytes(...bytes(`a ${escape} b`)), `not with the escape ${escape}`)
  }
  t.equal(rewriter.push('see !['), 'see ', 'a reference starts')
  t.notOk(rewriter.pushPlainBytes(...bytes('plain')), 'not while text is held')
  t.equal(rewriter.push('a](/c/x.png)'), `![a](${URL_X})`, 'which push completes')
  t.ok(rewriter.pushPlainBytes(...bytes(' and on')), 'then plain bytes are taken again')

  // The state after bytes is the state after the same text pushed: an indented line after
  // a blank one is code, and `![…](…)` in it is left alone, either way.
  for (const viaBytes of [false, true]) {
    const r = createRewriter({ resolve })
    r.push('text\n\n')
    if (viaBytes) t.ok(r.pushPlainBytes(...bytes('    code ')), 'bytes of an indented line')
    else t.equal(r.push('    code '), '    code ', 'an indented line')
    t.equal(r.push('![a](/c/x.png)') + r.end(), '![a](/c/x.png)', `in code, left alone (${viaBytes ? 'bytes' : 'text'})`)
  }
})

t.test('a held candidate is released untouched at the hold bound', async (t) => {
  const long = '![a](/c/' + 'x'.repeat(100)
  const out = stream([long, 'y'.repeat(50), '.png)'], 64)
  t.equal(out.join(''), long + 'y'.repeat(50) + '.png)', 'everything comes out unchanged')
  t.ok(out[0]!.length > 0, 'the first piece is released as soon as the bound is passed')
  const media = 'MEDIA:/c/' + 'z'.repeat(DEFAULT_MAX_HOLD)
  t.equal(stream([media, ' end']).join(''), media + ' end', 'overlong MEDIA path at the default bound')
})

t.test('end() releases what is held, rewriting what is complete', async (t) => {
  t.equal(stream(['text MEDIA:/c/x.png']).join(''), `text ![x.png](${URL_X})`, 'a bare MEDIA path completes at the end of the text')
  t.equal(stream(['open ![a](/c/x.p']).join(''), 'open ![a](/c/x.p', 'an incomplete reference is released as it was')
})

t.test('onRewrite reports each rewritten reference', async (t) => {
  const seen: RewriteEvent[] = []
  whole('![a](/c/x.png) MEDIA:/c/song.mp3 ![b](/etc/passwd)', { resolve, onRewrite: (event) => seen.push(event) })
  t.same(seen.map((event) => [event.dest, event.resolved.kind]), [['/c/x.png', 'image'], ['/c/song.mp3', 'media']], 'two rewrites, in order')
})

// Texts mixing every reference form with the characters that change state: code fences,
// backticks, escapes, newlines, multi-byte characters and near-miss syntax.
const fragment = fc.constantFrom(
  '![a](/c/x.png)', '![alt](</c/a b.png> "t")', 'MEDIA:/c/x.png', 'MEDIA:`/c/a b.png`', 'MEDIA:/c/song.mp3.',
  '![w](C:\\Users\\u\\x.png)', '![no](/etc/passwd)', '![', '](', '!', 'M', 'MEDIA:', '`', '``', '```\n', '~~~\n',
  '\n', '\n\n', ' ', '    ', '\t', '- ', '1. ', '\\', 'text', '🍎', 'é', '—', ')', '[', ']', '"', '<', '>', '/c/x.png'
)
const text = fc.array(fragment, { maxLength: 30 }).map((parts) => parts.join(''))

t.test('chunk invariance: any split gives the whole-text rewrite', async (t) => {
  let rewritten = 0
  fc.assert(fc.property(text.chain((value) => fc.tuple(fc.constant(value), splitText(value, 12))), ([value, pieces]) => {
    const expected = whole(value)
    if (expected.includes('http://gate.test/')) rewritten++
    return stream(pieces).join('') === expected
  }), { numRuns: 3000 })
  t.ok(rewritten > 300, `the generated texts exercise rewriting (${rewritten} of 3000 had a rewrite)`)
})

t.test('chunk invariance: one character per piece', async (t) => {
  fc.assert(fc.property(text, (value) => stream([...value]).join('') === whole(value)), { numRuns: 500 })
  t.pass('500 texts fed one code point at a time agree')
})

t.test('no piece ever carries part of a reference that a later piece changes', async (t) => {
  fc.assert(fc.property(text.chain((value) => fc.tuple(fc.constant(value), splitText(value, 12))), ([value, pieces]) => {
    const expected = whole(value)
    let sent = ''
    for (const piece of stream(pieces)) {
      sent += piece
      if (!expected.startsWith(sent)) return false
    }
    return true
  }), { numRuns: 2000 })
  t.pass('every prefix sent is a prefix of the final text')
})

t.test('onCodeReference reports whole references left alone in code', async (t) => {
  const seen: string[] = []
  const text = 'a `![x](/c/x.png)` b\n```\nMEDIA:/etc/passwd\n```\n\n    ![i](/c/x.png)\n![real](/c/x.png)'
  const out = whole(text, { resolve, onCodeReference: (dest) => seen.push(dest) })
  t.same(seen, ['/c/x.png', '/etc/passwd', '/c/x.png'], 'span, fence and indented code, in order')
  t.equal(out, text.replace('![real](/c/x.png)', `![real](${URL_X})`), 'only the reference outside code is rewritten')
  const inWord: string[] = []
  whole('```\nSOCIALMEDIA:/c/x.png and MEDIA:/c/x.png\n```', { resolve, onCodeReference: (dest) => inWord.push(dest) })
  t.same(inWord, ['/c/x.png'], 'in code as outside, MEDIA inside a word is not a tag')
})
