// Keep-alive comments while the upstream is silent mid-stream (agents go quiet for
// minutes while tools run; idle timeouts on the way would cut the answer).
import t from 'tap'
import { contentOf, dataLines, eventBlocks } from './fixtures/gate.js'
import { postJson } from './fixtures/http.js'
import { DONE, FINISH, ROLE, contentEvents } from './fixtures/chat.js'
import { sse } from './fixtures/mock-upstream.js'
import { startProxy } from './fixtures/proxy.js'

const KEEPALIVE = ': keepalive'

// Role, a first word, a pause after it, then the rest of the answer.
const ANSWER = [ROLE, ...contentEvents(['Looking', ' it up.']), FINISH, DONE]
const PAUSE_AFTER = 1

t.test('comments fill an upstream pause, and the stream then completes', async t => {
  const { gate } = await startProxy(t, { options: { keepalive: 0.3 }, upstream: sse(ANSWER, { delayMs: (i) => i === PAUSE_AFTER ? 1500 : 0 }) })

  const res = await postJson(gate.url, '/v1/chat/completions', { stream: true })
  const blocks = eventBlocks(res.text)
  const comments = blocks.filter((block) => block === KEEPALIVE)
  t.ok(comments.length >= 3, `several comments during 1.5 s at 0.3 s (${comments.length})`)
  t.ok(comments.length <= 5, `and no more than the pause has room for (${comments.length})`)
  const first = blocks.indexOf(KEEPALIVE)
  const last = blocks.lastIndexOf(KEEPALIVE)
  t.equal(contentOf(blocks.slice(0, first).join('\n\n') + '\n\n'), 'Looking', 'they come after the first word')
  t.same(blocks.slice(first, last + 1).filter((block) => block !== KEEPALIVE), [], 'all within the pause')
  t.equal(contentOf(res.text), 'Looking it up.', 'the answer is whole')
  t.equal(dataLines(res.text).at(-1), '[DONE]', 'and ends normally')
  t.notOk(res.text.includes('"error"'), 'without an error event')
})

t.test('no comment while the upstream keeps talking', async t => {
  const { gate } = await startProxy(t, { options: { keepalive: 0.3 }, upstream: sse(ANSWER, { delayMs: 100 }) })
  const res = await postJson(gate.url, '/v1/chat/completions', { stream: true })
  t.notOk(res.text.includes(KEEPALIVE), 'each upstream read resets the timer')
  t.equal(dataLines(res.text).at(-1), '[DONE]', 'complete')
})

t.test('keepalive 0 adds no comment, however long the pause', async t => {
  const { gate } = await startProxy(t, { options: { keepalive: 0 }, upstream: sse(ANSWER, { delayMs: (i) => i === PAUSE_AFTER ? 700 : 0 }) })
  const res = await postJson(gate.url, '/v1/chat/completions', { stream: true })
  t.notOk(res.text.includes(KEEPALIVE), 'no comment')
  t.equal(res.text, ANSWER.join(''), 'the stream byte for byte as the upstream sent it')
})
