import t from 'tap'
import { parseMarkdownImage, parseMediaTag } from '../../src/rewrite/reference.js'
import { fakeResolve } from '../fixtures/resolve.js'

const resolve = fakeResolve({ '/c/x.png': 'image', '/c/s.mp3': 'media' })
const md = (buf: string, eof = false, maxHold = 4096): string => parseMarkdownImage(buf, 0, eof, maxHold, resolve).kind
const media = (buf: string, eof = false, maxHold = 4096): string => parseMediaTag(buf, 0, eof, maxHold, resolve).kind

t.test('markdown image: need while the buffer ends inside the window', async (t) => {
  const prefixes = ['!', '![', '![a', '![a]', '![a](', '![a]( ', '![a](/c/x', '![a](/c/x.png', '![a](/c/x.png ', '![a](/c/x.png "t', '![a](/c/x.png "t"', '![a](<', '![a](</c/x.png>', '![a [b', '![a \\']
  for (const prefix of prefixes) {
    t.equal(md(prefix), 'need', `need more after ${JSON.stringify(prefix)}`)
    t.equal(md(prefix, true), 'none', `none at the end of text after ${JSON.stringify(prefix)}`)
  }
})

t.test('markdown image: definite answers', async (t) => {
  const table: Array<[string, string]> = [
    ['!x', 'none'], ['![a]x', 'none'], ['![a](/c/x.png)', 'match'], ['![a](/c/x.png)trailing', 'match'],
    ['![a](/c/x.png x)', 'none'], ['![a](</c/x.png> "t")', 'match'], ['![a](<a\nb>)', 'none'], ['![a](<a<b>)', 'none'],
    ['![a](/c/x.png (t(t)))', 'none'], ['![a](/c/x.png\u0001)', 'none'], ['![a](/c/s.mp3)', 'none'], ['![a\nb](/c/x.png)', 'none'],
    ['![a](/c/(x).png)', 'none'], ['![a](\\/c/x.png)', 'match'], ['![a](/c/x.png "say \\"hi\\"")', 'match'],
    ['![a](/c/x.png "t"  )', 'match'], ['![a](/c/x.png "t" x)', 'none'], ['![a](/c/x.png (a\\(b))', 'match']
  ]
  for (const [input, kind] of table) t.equal(md(input), kind, JSON.stringify(input))
  const titled = parseMarkdownImage('![a](/c/x.png "say \\"hi\\"" )', 0, false, 4096, resolve)
  t.same(titled.kind === 'match' && titled.text, '![a](http://gate.test/images/x.png "say \\"hi\\"" )', 'an escaped quote does not end the title; the title is kept as written')
})

t.test('markdown image: the hold bound makes the answer final', async (t) => {
  t.equal(md('![a](/c/x', false, 9), 'none', 'a full window without an answer is none')
  t.equal(md('![a](/c/x.png)', false, 14), 'match', 'a match that fits the window exactly')
})

t.test('MEDIA tag', async (t) => {
  const table: Array<[string, boolean, string]> = [
    ['M', false, 'need'], ['MEDI', false, 'need'], ['MEDIA:', false, 'need'], ['MEDIA:/c/x.png', false, 'need'],
    ['MEDIA:/c/x.png', true, 'match'], ['MEDIA:/c/x.png ', false, 'match'], ['MEDIA:`/c/x.png', false, 'need'],
    ['MEDIA:`/c/x.png`', false, 'match'], ['MEDIA:"/c/x.png"', false, 'match'], ['MEDIA:\'/c/s.mp3\'', false, 'match'],
    ['MEDIA:"/c/x.png\n"', false, 'none'], ['My', false, 'none'], ['MEDIA;', false, 'none'], ['MEDIA:\n', false, 'none'],
    ['MEDIA:/c/nope.png ', false, 'none'], ['MEDIA:""', false, 'none'], ['MEDIA:...', true, 'none']
  ]
  for (const [input, eof, kind] of table) t.equal(media(input, eof), kind, `${JSON.stringify(input)} eof=${eof}`)
  t.equal(media('MEDIA:/c/x.png', false, 10), 'none', 'a bare path that reaches the bound is not trusted')
  t.equal(media('MEDIA:/c/x.png', true, 10), 'none', 'also at the end of text')
  const audio = parseMediaTag('MEDIA:/c/s.mp3!', 0, true, 4096, resolve)
  t.same(audio.kind === 'match' && [audio.text, audio.end], ['[s.mp3](http://gate.test/images/s.mp3)', 14], 'media link; trailing punctuation left as text')
})
