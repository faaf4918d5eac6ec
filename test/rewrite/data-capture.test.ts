import t from 'tap'
import fc from 'fast-check'
import { createRewriter } from '../../src/rewrite/rewriter.js'
import type { RewriterOptions } from '../../src/rewrite/rewriter.js'
import type { Resolved } from '../../src/rewrite/ports.js'
import { DELIVERABLE, fakeResolve } from '../fixtures/resolve.js'
import { cutAt } from '../fixtures/split.js'

// A store that accepts PNG bodies starting with the PNG signature in base64 ("iVBOR").
const stored: string[] = []
function storeDataImage (mime: string, base64: string): Resolved | undefined {
  if (mime !== 'image/png' || !base64.startsWith('iVBOR')) return undefined
  stored.push(base64)
  return { url: `http://gate.test/images/h${base64.length}.png`, name: `h${base64.length}.png`, kind: 'image' }
}
const options: RewriterOptions = { resolve: fakeResolve(DELIVERABLE), storeDataImage, maxDataChars: 100_000 }
function stream (pieces: string[], opts: RewriterOptions = options): string[] {
  const rewriter = createRewriter(opts)
  const out = pieces.map((piece) => rewriter.push(piece))
  out.push(rewriter.end())
  return out
}
const whole = (text: string): string => stream([text]).join('')

const BODY = 'iVBORw0KGgo' + 'A'.repeat(5000) + '=='

t.test('inline images are stored and linked', async (t) => {
  t.equal(whole(`see ![chart](data:image/png;base64,${BODY}) ok`), `see ![chart](http://gate.test/images/h${BODY.length}.png) ok`, 'replaced by the link')
  t.equal(whole(`![c](data:image/png;base64,${BODY} "the title")`), `![c](http://gate.test/images/h${BODY.length}.png "the title")`, 'title kept')
  t.equal(whole(`![c](data:image/png;base64,${BODY} (a \\( b) )`), `![c](http://gate.test/images/h${BODY.length}.png (a \\( b) )`, 'a title in parentheses, with an escaped one inside')
  t.equal(whole(`![c](data:image/png;base64,${BODY}\t'it\\'s')`), `![c](http://gate.test/images/h${BODY.length}.png\t'it\\'s')`, 'an escaped quote does not end the title')
  t.equal(whole(`![c](DATA:IMAGE/PNG;BASE64,${BODY})`), `![c](http://gate.test/images/h${BODY.length}.png)`, 'scheme and type in any case')
})

t.test('what cannot be stored is left exactly as it was', async (t) => {
  const cases: Array<[string, string]> = [
    ['store refuses (not a PNG body)', '![c](data:image/png;base64,R0lGODlh)'],
    ['declared type not an image type we store', `![c](data:image/svg+xml;base64,${BODY})`],
    ['a character outside base64', '![c](data:image/png;base64,iVBOR*x) and ![d](/c/x.png'],
    ['no closing paren', `![c](data:image/png;base64,${BODY}`],
    ['junk after the body', `![c](data:image/png;base64,${BODY} junk)`],
    ['a line break in the title', `![c](data:image/png;base64,${BODY} "a\nb")`],
    ['a line break in a title in parentheses', `![c](data:image/png;base64,${BODY} (a\nb))`],
    ['an unescaped parenthesis in a title in parentheses', `![c](data:image/png;base64,${BODY} (a(b)))`],
    ['too long', `![c](data:image/png;base64,iVBOR${'A'.repeat(100_001)})`]
  ]
  for (const [name, text] of cases) t.equal(whole(text), text, name)
  t.equal(whole('![c](data:image/png;base64,iVBOR*x) then ![d](/c/x.png)'), '![c](data:image/png;base64,iVBOR*x) then ![d](http://gate.test/images/x.png)', 'scanning goes on after a released image')
})

t.test('the body is collected piece by piece, not held as text', async (t) => {
  const rewriter = createRewriter(options)
  t.equal(rewriter.push('Here: ![c](data:image/png;base64,'), 'Here: ', 'text before the image goes out at once')
  for (let i = 0; i < 100; i++) t.equal(rewriter.push('A'.repeat(1000)), '', `piece ${i} is taken`)
  t.ok(rewriter.holding, 'holding while the image lasts')
  t.equal(rewriter.push(') done'), `![c](data:image/png;base64,${'A'.repeat(100_000)}) done`, 'a body the store refuses is released untouched when it ends')
  t.notOk(rewriter.holding, 'nothing held after it')
  t.equal(rewriter.end(), '', 'nothing more')
  const png = createRewriter(options)
  t.equal(png.push('![c](data:image/png;base64,iVBOR'), '', 'a PNG body')
  t.equal(png.push('A'.repeat(1000)), '', 'taken')
  t.equal(png.push(')!'), '![c](http://gate.test/images/h1005.png)', 'linked as soon as it ends; the bang after it may start a reference')
  t.equal(png.end(), '!', 'and is released at the end')
})

t.test('chunk invariance with inline images', async (t) => {
  const fragment = fc.constantFrom(
    `![a](data:image/png;base64,${BODY})`, `![a](data:image/png;base64,${BODY} "t")`, '![a](data:image/png;base64,iVBOR*)',
    '![a](data:image/gif;base64,R0lG)', '![a](data:image/png;base64,', 'iVBOR', ')', ' "t"', '![a](/c/x.png)', 'text', '\n', '`', '!'
  )
  fc.assert(fc.property(fc.array(fragment, { maxLength: 8 }).chain((parts) => {
    const text = parts.join('')
    return fc.tuple(fc.constant(text), fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, text.length - 1) }), { maxLength: 12 }))
  }), ([text, cuts]) => {
    return stream(cutAt(text, cuts.filter((c) => c < text.length))).join('') === whole(text)
  }), { numRuns: 1500 })
  t.pass('1500 random splits agree')
  const text = `a ![x](data:image/png;base64,${BODY}) b`
  t.equal(stream([...text]).join(''), whole(text), 'one character at a time')
})

t.test('rewriters sharing a gate capture one inline image at a time', async (t) => {
  const gate = { busy: false }
  const first = createRewriter({ ...options, captureGate: gate })
  const second = createRewriter({ ...options, captureGate: gate, maxHold: 64 })
  t.equal(first.push('![a](data:image/png;base64,iVBOR'), '', 'the first choice captures')
  t.ok(gate.busy, 'the gate is taken')
  const other = `![b](data:image/png;base64,iVBOR${'A'.repeat(100)}`
  t.equal(second.push(other), other, 'the second choice does not: its inline image is an ordinary destination, released at the hold bound')
  t.equal(first.push('AAAA)'), '![a](http://gate.test/images/h9.png)', 'the first image completes')
  t.notOk(gate.busy, 'and frees the gate')
  t.equal(second.push(' ![c](data:image/png;base64,iVBORAAAA)'), ' ![c](http://gate.test/images/h9.png)', 'now the second choice may capture')
})

t.test('blanks after the body wait for the rest of the tail', async (t) => {
  const rewriter = createRewriter(options)
  t.equal(rewriter.push('![c](data:image/png;base64,iVBORAAAA  '), '', 'blanks after the body: the tail may still come')
  t.equal(rewriter.push(')'), '![c](http://gate.test/images/h9.png  )', 'then it closes')
  const open = '![c](data:image/png;base64,iVBORAAAA  '
  t.equal(whole(open), open, 'blanks and then the end of the text: left as it was')
})
