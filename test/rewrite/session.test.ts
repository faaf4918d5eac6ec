import t from 'tap'
import { createRewriteSession } from '../../src/rewrite/session.js'
import type { OnReject, Resolve } from '../../src/rewrite/ports.js'
import { fakeResolve } from '../fixtures/resolve.js'

const known = fakeResolve({ '/c/x.png': 'image' })
/** A resolver that reports `/c/gone.png` as missing to its callback. */
const resolveFor = (onReject: OnReject): Resolve => (dest, accept) => {
  const found = known(dest, accept)
  if (found === undefined) onReject({ reason: 'missing', fileName: dest.split('/').pop() as string })
  return found
}

function setup (): { lines: Array<[Record<string, unknown>, string]>, outcomes: string[], session: ReturnType<typeof createRewriteSession> } {
  const lines: Array<[Record<string, unknown>, string]> = []
  const outcomes: string[] = []
  const session = createRewriteSession({ resolveFor, log: { debug: (fields, message) => { lines.push([fields, message]) } }, onReference: (outcome) => { outcomes.push(outcome) } })
  return { lines, outcomes, session }
}

t.test('one session counts and logs each reference of its answer once', async (t) => {
  const { lines, outcomes, session } = setup()
  const rewriter = session.newRewriter()
  const text = 'a ![x](/c/x.png) b ![y](/c/gone.png) `![z](/c/x.png)`'
  t.equal(rewriter.push(text) + rewriter.end(), 'a ![x](http://gate.test/images/x.png) b ![y](/c/gone.png) `![z](/c/x.png)`', 'rewritten outside code only')
  t.same(session.tally, { rewritten: 1, left: 2 }, 'rewritten, and left (missing, in code)')
  t.same(outcomes, ['rewritten', 'missing', 'in-code'], 'each reported for metrics')
  t.same(lines.map(([fields, message]) => [message, fields.reason, fields.name]), [
    ['reference rewritten', undefined, 'x.png'],
    ['reference left alone', 'missing', 'gone.png'],
    ['reference left alone', 'in-code', 'x.png']
  ], 'one debug line each, with the file name only')
  t.equal(session.rewriteWhole(text, { repeat: true }), 'a ![x](http://gate.test/images/x.png) b ![y](/c/gone.png) `![z](/c/x.png)`', 'a repeat is rewritten the same way')
  t.same(session.tally, { rewritten: 1, left: 2 }, 'but not counted again')
  t.equal(lines.length, 3, 'nor logged')
  session.rewriteWhole('![x](/c/x.png)')
  t.same(session.tally, { rewritten: 2, left: 2 }, 'a whole text that is no repeat counts')
})

t.test('the rewriters of one session share one inline image capture', async (t) => {
  const stored: string[] = []
  const session = createRewriteSession({
    resolveFor,
    log: { debug: () => {} },
    storeDataImage: (mime, base64) => { stored.push(base64); return { url: 'http://gate.test/images/d.png', name: 'd.png', kind: 'image' } },
    maxDataChars: 100
  })
  const first = session.newRewriter()
  const second = session.newRewriter()
  t.equal(first.push('![a](data:image/png;base64,AAAA'), '', 'the first choice captures')
  t.equal(second.push('![b](data:image/png;base64,BBBB)'), '![b](data:image/png;base64,BBBB)', 'the second leaves its inline image as text meanwhile')
  t.equal(first.push(')') + first.end(), '![a](http://gate.test/images/d.png)', 'the first stores its image')
  t.same(stored, ['AAAA'], 'one image stored')
})
