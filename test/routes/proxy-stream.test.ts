// Streamed chat completions end to end: real mock upstream, real proxy, real files.
import t from 'tap'
import { pathAndQuery, contentByChoice, contentOf, dataLines, eventBlocks } from '../fixtures/gate.js'
import type { Gate } from '../fixtures/gate.js'
import { CONTAINER_DIR, IMAGE_NAME, IMAGE_PATH, PNG, hermesFixture } from '../fixtures/hermes.js'
import { postJson, send } from '../fixtures/http.js'
import { CHAT, DONE, ROLE, chunk, contentEvents } from '../fixtures/chat.js'
import { sse } from '../fixtures/mock-upstream.js'
import { startProxy } from '../fixtures/proxy.js'
import { splitBytes } from '../fixtures/split.js'
import { SOON_MS, within } from '../fixtures/within.js'

const FINISH = chunk({}, { finish: 'stop', usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } })

const isContent = (block: string): boolean => block.includes('"content"')

/** Every piece of `text` as its own content event, one character (code point) each. */
function perCharacter (text: string, index = 0): string[] {
  return contentEvents([...text], index)
}

function linkFor (gate: Gate, name: string): string {
  return gate.link(name)
}

t.test('the recorded hermes stream comes out with the image path rewritten', async t => {
  const { upstream, gate } = await startProxy(t)
  const recorded = hermesFixture('hermes-chat-stream.sse')
  upstream.handle(sse([recorded]))

  const res = await postJson(gate.url, '/v1/chat/completions', CHAT)

  t.equal(res.status, 200, 'status passes through')
  t.equal(res.headers['content-type'], 'text/event-stream', 'content-type is the SSE type')
  t.equal(res.headers['cache-control'], 'no-cache', 'the stream is not cached')
  t.equal(res.headers['x-accel-buffering'], 'no', 'nginx in front must not buffer the stream')
  t.equal(res.headers['content-encoding'], undefined, 'the stream is not compressed')
  t.equal(res.headers['content-length'], undefined, 'a rewritten stream has no length')
  t.equal(upstream.requests[0]?.body.toString('utf8'), CHAT, 'the request body reaches the upstream as sent')

  const expected = hermesFixture('hermes-chat-stream.expected.txt').replace(IMAGE_PATH, linkFor(gate, IMAGE_NAME))
  t.equal(contentOf(res.text), expected, 'the content is the recorded text with only the path replaced')

  // The stream's layout: every non-content event byte for byte, at its place.
  const shape = (blocks: string[]): string[] => blocks.map((block) => isContent(block) ? '<content>' : block)
  const sent = eventBlocks(recorded)
  const got = eventBlocks(res.text)
  t.same(shape(got), shape(sent), 'role chunk, tool progress, keepalive, final chunk and [DONE] are forwarded unchanged and in order')
  t.match(got[0], /^data: \{"id": "chatcmpl-3f9c1a7e5b2d4c8e9a0b1c2d3e4f5", "object"/, 'the role chunk comes first, with Python separators')
  t.equal(got[got.length - 1], 'data: [DONE]', '[DONE] is the last event')
  for (const [i, block] of got.entries()) {
    if (!isContent(block) || sent[i] === undefined) continue
    if (contentOf(block + '\n\n') === contentOf(sent[i] + '\n\n')) {
      t.equal(block, sent[i], `content event ${i} whose text did not change is forwarded byte for byte`)
    }
  }

  const link = /\]\((http[^)]+)\)/.exec(contentOf(res.text))?.[1]
  t.equal(link, linkFor(gate, IMAGE_NAME), 'the link points at the public URL')
  const image = await send(gate.url, { path: pathAndQuery(link ?? '') })
  t.equal(image.status, 200, 'the linked image is served')
  t.equal(image.headers['content-type'], 'image/png', 'as a PNG')
  t.same(image.body, PNG, 'byte for byte')
})

t.test('the recorded stream cut at every byte boundary, with CRLF line endings, gives the same events', async t => {
  const { upstream, gate } = await startProxy(t)
  const recorded = hermesFixture('hermes-chat-stream.sse')
  upstream.handle(sse(splitBytes(recorded.replace(/\n/g, '\r\n')), { delayMs: (i) => i % 50 === 0 ? 2 : 0 }))

  const res = await postJson(gate.url, '/v1/chat/completions', CHAT)

  const expected = hermesFixture('hermes-chat-stream.expected.txt').replace(IMAGE_PATH, linkFor(gate, IMAGE_NAME))
  t.equal(contentOf(res.text), expected, 'the content is rewritten')
  const untouched = (lines: string[]): string[] => lines.filter((data) => !data.includes('"content"'))
  t.same(untouched(dataLines(res.text)), untouched(dataLines(recorded)), 'every other payload is forwarded byte for byte')
  t.ok(res.text.includes('\r\n\r\n: keepalive\r\n\r\n'), 'the keepalive comment is forwarded with the upstream\'s own line ends')
  t.equal((res.text.match(/^event: hermes\.tool\.progress$/gm) ?? []).length, 2, 'both named events keep their name')
})

t.test('with dropNamedEvents, hermes\' tool progress events are left out of the chat stream, the rest is unchanged', async t => {
  const recorded = hermesFixture('hermes-chat-stream.sse')
  t.equal((recorded.match(/^event: hermes\.tool\.progress$/gm) ?? []).length, 2, 'control: the recording holds two named events')
  const plain = await startProxy(t)
  plain.upstream.handle(sse([recorded]))
  const kept = await postJson(plain.gate.url, '/v1/chat/completions', CHAT)
  const { upstream, gate } = await startProxy(t, { options: { dropNamedEvents: true } })
  upstream.handle(sse(splitBytes(recorded)))

  const res = await postJson(gate.url, '/v1/chat/completions', CHAT)

  t.equal(res.status, 200, 'ok')
  t.notMatch(res.text, /^event:/m, 'no event: field is left')
  // The two servers sign with different keys: their links are compared as one placeholder.
  const blocks = (text: string, server: Gate): string[] => eventBlocks(text.replace(linkFor(server, IMAGE_NAME), '<link>'))
  t.same(blocks(res.text, gate), blocks(kept.text, plain.gate).filter((block) => !block.startsWith('event: hermes.tool.progress')),
    'every other event and comment is what the stream carries without the option, in order')
  const expected = hermesFixture('hermes-chat-stream.expected.txt').replace(IMAGE_PATH, linkFor(gate, IMAGE_NAME))
  t.equal(contentOf(res.text), expected, 'the content is still rewritten')
  t.equal(dataLines(res.text).at(-1), '[DONE]', '[DONE] is last')
})

t.test('a reference split one character per delta is rewritten', async t => {
  const { upstream, gate } = await startProxy(t)
  const text = hermesFixture('hermes-chat-stream.expected.txt')
  // Every event in a write of its own, some of them after a pause.
  upstream.handle(sse([ROLE, ...perCharacter(text), FINISH, DONE], { delayMs: (i) => i % 7 === 0 ? 3 : 0 }))

  const res = await postJson(gate.url, '/v1/chat/completions', CHAT)

  t.equal(contentOf(res.text), text.replace(IMAGE_PATH, linkFor(gate, IMAGE_NAME)), 'the reference is rewritten')
  t.equal(dataLines(res.text).at(-1), '[DONE]', 'the stream ends with [DONE]')
  t.equal(gate.logs.filter((line) => line.msg === 'reference rewritten').length, 1, 'one rewrite is logged')
})

t.test('a MEDIA tag split one character per delta becomes a markdown image', async t => {
  const { upstream, gate } = await startProxy(t)
  const text = `Done.\n\nMEDIA:${IMAGE_PATH}\n\nThe file is also in your cache.`
  upstream.handle(sse([ROLE, ...perCharacter(text), FINISH, DONE]))

  const res = await postJson(gate.url, '/v1/chat/completions', CHAT)

  const expected = `Done.\n\n![${IMAGE_NAME}](${linkFor(gate, IMAGE_NAME)})\n\nThe file is also in your cache.`
  t.equal(contentOf(res.text), expected, 'the tag is replaced by an image the UI can show')
})

t.test('paths that are not deliverable files, URLs and code are left byte for byte', async t => {
  const { upstream, gate, dir } = await startProxy(t)
  const text = [
    '![p](/etc/passwd)',
    'MEDIA:/etc/passwd',
    `![s](${dir}/secret.png)`,
    `MEDIA:${dir}/secret.png`,
    `![t](${CONTAINER_DIR}/../../../../etc/passwd.png)`,
    `![t](${CONTAINER_DIR}/../secret.png)`,
    `![m](${CONTAINER_DIR}/missing.png)`,
    `MEDIA:${CONTAINER_DIR}/missing.png`,
    `![h](http://example.com/${IMAGE_NAME})`,
    `![h](https://example.com${IMAGE_PATH})`,
    `MEDIA:https://example.com${IMAGE_PATH}`,
    `\`\`\`\n![fenced](${IMAGE_PATH})\nMEDIA:${IMAGE_PATH}\n\`\`\``,
    `~~~md\n![tilde](${IMAGE_PATH})\n~~~`,
    `Inline \`![code](${IMAGE_PATH})\` and \`MEDIA:${IMAGE_PATH}\` and \`\`![two](${IMAGE_PATH})\`\`.`
  ].join('\n\n')

  for (const [label, pieces] of [['whole', [text]], ['one character per delta', [...text]]] as const) {
    upstream.handle(sse([ROLE, ...contentEvents([...pieces]), FINISH, DONE]))
    const res = await postJson(gate.url, '/v1/chat/completions', CHAT)
    t.equal(res.status, 200, `${label}: answered`)
    t.equal(contentOf(res.text), text, `${label}: the text is unchanged`)
  }
  t.equal(gate.logs.filter((line) => line.msg === 'reference rewritten').length, 0, 'nothing was rewritten')

  const misses = [
    '/images/passwd',
    '/images/etc/passwd',
    '/images/secret.png',
    '/images/../secret.png',
    '/images/..%2fsecret.png',
    '/images/%2e%2e/secret.png',
    '/images//etc/passwd',
    '/images/missing.png',
    `/images/${IMAGE_NAME}%00.png`
  ]
  for (const path of misses) {
    const res = await send(gate.url, { path })
    t.equal(res.status, 404, `${path} is not found`)
    t.notOk(res.body.includes('TOPSECRET'), `${path} never shows the secret`)
  }
  t.equal(upstream.requests.filter((request) => request.url.includes('images')).length, 0, 'image misses never reach the upstream')
})

t.test('two interleaved choices are rewritten each on its own', async t => {
  const { upstream, gate } = await startProxy(t, { cacheFiles: { 'b.png': PNG } })
  const first = `A: ![a](${IMAGE_PATH}) end`
  const second = `B: MEDIA:${CONTAINER_DIR}/b.png done`
  const pieces = (text: string): string[] => text.match(/[^]{1,3}/g) ?? []
  const a = contentEvents(pieces(first), 0)
  const b = contentEvents(pieces(second), 1)
  const events: string[] = [chunk({ role: 'assistant' }, { index: 0 }), chunk({ role: 'assistant' }, { index: 1 })]
  for (let i = 0; i < Math.max(a.length, b.length); i++) events.push(a[i] ?? '', b[i] ?? '')
  events.push(chunk({}, { index: 0, finish: 'stop' }), chunk({}, { index: 1, finish: 'stop' }), DONE)
  upstream.handle(sse(events.filter((event) => event.length > 0)))

  const res = await postJson(gate.url, '/v1/chat/completions', CHAT)

  const texts = contentByChoice(res.text)
  t.equal(texts.get(0), `A: ![a](${linkFor(gate, IMAGE_NAME)}) end`, 'choice 0 is rewritten')
  t.equal(texts.get(1), `B: ![b.png](${linkFor(gate, 'b.png')}) done`, 'choice 1 is rewritten')
  t.equal(dataLines(res.text).at(-1), '[DONE]', 'the stream ends with [DONE]')
})

t.test('held text is released before the finish, at [DONE] and at the end of the upstream', async t => {
  const { upstream, gate } = await startProxy(t)
  const finishData = dataLines(FINISH)[0]

  t.test('before the chunk with finish_reason', async t => {
    upstream.handle(sse([ROLE, ...contentEvents(['See ', '![x']), FINISH, DONE]))
    const res = await postJson(gate.url, '/v1/chat/completions', CHAT)
    const data = dataLines(res.text)
    t.equal(contentOf(res.text), 'See ![x', 'the open reference comes out untouched')
    const finishAt = data.indexOf(finishData ?? '')
    const releasedAt = data.findIndex((line) => line.includes('![x'))
    t.ok(finishAt > 0, 'the finish chunk is forwarded byte for byte')
    t.equal(releasedAt, finishAt - 1, 'the held text comes just before the finish chunk')
    t.same(JSON.parse(data[releasedAt] ?? ''), {
      id: 'chatcmpl-test',
      object: 'chat.completion.chunk',
      created: 1777026000,
      model: 'hermes-agent',
      choices: [{ index: 0, delta: { content: '![x' }, finish_reason: null }]
    }, 'the released text is a chunk like its neighbours, without usage or finish')
    t.same(data.slice(finishAt + 1), ['[DONE]'], '[DONE] follows')
  })

  t.test('a MEDIA tag at the very end is complete once the choice finishes', async t => {
    upstream.handle(sse([ROLE, ...contentEvents(['Here: MEDIA:', IMAGE_PATH]), FINISH, DONE]))
    const res = await postJson(gate.url, '/v1/chat/completions', CHAT)
    t.equal(contentOf(res.text), `Here: ![${IMAGE_NAME}](${linkFor(gate, IMAGE_NAME)})`, 'the tag is rewritten')
    const data = dataLines(res.text)
    t.ok(data.indexOf(finishData ?? '') > data.findIndex((line) => line.includes('/images/')), 'the link comes before the finish')
  })

  t.test('at [DONE] when no choice finished', async t => {
    upstream.handle(sse([ROLE, ...contentEvents(['See ', '![x']), DONE]))
    const res = await postJson(gate.url, '/v1/chat/completions', CHAT)
    const data = dataLines(res.text)
    t.equal(contentOf(res.text), 'See ![x', 'the open reference comes out untouched')
    t.match(data.at(-2), /"content":"!\[x"/, 'just before [DONE]')
    t.equal(data.at(-1), '[DONE]', '[DONE] is last')
  })

  t.test('when the upstream ends without [DONE]', async t => {
    upstream.handle(sse([ROLE, ...contentEvents(['Here: MEDIA:', IMAGE_PATH])]))
    const res = await postJson(gate.url, '/v1/chat/completions', CHAT)
    const data = dataLines(res.text)
    t.equal(contentOf(res.text.slice(0, res.text.lastIndexOf('data: {"error"'))), `Here: ![${IMAGE_NAME}](${linkFor(gate, IMAGE_NAME)})`, 'the held tag is rewritten and released')
    t.match(data.at(-1), /^\{"error":/, 'then the cut answer is reported')
  })
})

t.test('a stream the upstream keeps open after [DONE] still ends', async t => {
  const { upstream, gate } = await startProxy(t)
  upstream.handle(sse([ROLE, ...contentEvents(['Hi']), FINISH, DONE], { end: false }))
  const closed = upstream.closed()

  const res = await postJson(gate.url, '/v1/chat/completions', CHAT)

  t.equal(dataLines(res.text).at(-1), '[DONE]', 'the response ends at [DONE]')
  await within(closed, SOON_MS, 'the upstream response is released')
  t.pass('the upstream response is released')
})

t.test('answers that end with [DONE] leave the upstream connection open for the next request', async t => {
  const { upstream, gate } = await startProxy(t)
  const sockets = new Set<unknown>()
  let ended = Promise.resolve()
  // As an agent does: [DONE], and the end of the body a moment later.
  upstream.handle((req, res) => {
    sockets.add(req.socket)
    // A moment for the proxy to read the end and give the connection back to its pool.
    ended = new Promise((resolve) => { res.once('close', () => { setTimeout(resolve, 200) }) })
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write([ROLE, ...contentEvents(['Hi']), FINISH, DONE].join(''))
    setTimeout(() => res.end(), 50)
  })
  for (let i = 0; i < 3; i++) {
    t.equal(contentOf((await postJson(gate.url, '/v1/chat/completions', CHAT)).text), 'Hi', `answer ${i + 1}`)
    // The next question comes after the agent finished its answer.
    await ended
  }
  t.equal(sockets.size, 1, 'three answers over one upstream connection')
})

t.test('nothing after [DONE] is forwarded', async t => {
  const { upstream, gate } = await startProxy(t)
  upstream.handle(sse([ROLE, ...contentEvents(['Hi']), FINISH, DONE, chunk({ content: 'late' }), ': late comment\n\n']))
  const res = await postJson(gate.url, '/v1/chat/completions', CHAT)
  t.equal(contentOf(res.text), 'Hi', 'late content is dropped')
  t.notOk(res.text.includes('late'), 'and so is a late comment')
})
