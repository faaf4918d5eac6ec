// Hostile event streams, at the unit level (byte splits at every position) and through a
// whole imagegate (huge lines, the per-event cap, handler failures).
import t from 'tap'
import type { Test } from 'tap'
import { createChatCompletionsHandler } from '../../src/sse/chat-completions.js'
import { createEventStream, DEFAULT_MAX_EVENT_SIZE } from '../../src/sse/event-stream.js'
import { createRewriter } from '../../src/rewrite/rewriter.js'
import { dataLines, rawEvents } from '../fixtures/gate.js'
import { IMAGE_NAME, IMAGE_PATH } from '../fixtures/hermes.js'
import { hostileContent, hostileStream } from '../fixtures/hostile-sse.js'
import { postJson } from '../fixtures/http.js'
import { CHAT, DONE, FINISH, ROLE, chunk, contentEvents } from '../fixtures/chat.js'
import { drained, sse } from '../fixtures/mock-upstream.js'
import { startProxy } from '../fixtures/proxy.js'
import { splitBytes } from '../fixtures/split.js'
import type { Proxy } from '../fixtures/proxy.js'
import { DELIVERABLE, fakeResolve } from '../fixtures/resolve.js'
import { watchWarnings } from '../fixtures/warnings.js'
import { SOON_MS, within } from '../fixtures/within.js'
import { errorBody } from '../../src/errors.js'

const APPLE = '/root/.hermes/cache/images/apple.png'
const APPLE_URL = 'http://gate.test/images/apple.png'
const BROKEN = JSON.stringify(errorBody('upstream_stream_error'))
const TOO_LARGE = JSON.stringify(errorBody('upstream_event_too_large'))
const MB = 1024 * 1024

const encode = (text: string): Uint8Array => new TextEncoder().encode(text)

/** The unit under test: the chat transform fed raw byte chunks, as the proxy feeds it. */
function transform (chunks: Uint8Array[]): { out: string[], done: boolean } {
  const handler = createChatCompletionsHandler(() => createRewriter({ resolve: fakeResolve(DELIVERABLE) }))
  const stream = createEventStream(handler)
  const out: string[] = []
  for (const piece of chunks) out.push(stream.feed(piece).toString())
  out.push(stream.end().toString())
  return { out: rawEvents(out.join('')), done: handler.done }
}

/** Content of choice 0 in an SSE text; events that are not chat chunks are skipped. */
function contentOf (body: string): string {
  let text = ''
  for (const data of dataLines(body)) {
    if (!isContentChunk(data)) continue
    for (const choice of (JSON.parse(data) as { choices: Array<{ index?: unknown, delta?: { content?: unknown } }> }).choices) {
      if (choice?.index === 0 && typeof choice.delta?.content === 'string') text += choice.delta.content
    }
  }
  return text
}

function isContentChunk (data: string): boolean {
  let parsed: unknown
  try {
    parsed = JSON.parse(data)
  } catch {
    return false
  }
  const choices = (parsed as { choices?: unknown } | null)?.choices
  return Array.isArray(choices) && choices.some((choice: { index?: unknown, delta?: { content?: unknown } } | null) =>
    choice?.index === 0 && typeof choice.delta?.content === 'string')
}

/** The events that carry no text of choice 0: each must come out exactly once, unchanged. */
const PASSTHROUGH = [
  ': a comment before anything',
  'retry: 1500',
  'event: hermes.tool.progress\nid: 7\ndata: {"tool": "image_generate", "emoji": "\ud83c\udfa8"}',
  dataLines(ROLE).map((data) => `data: ${data}`)[0],
  ': keepalive',
  'data: {not json',
  'data: [1, 2, 3]',
  'data: "just a string"',
  'data: null',
  'data: {"object": "chat.completion.chunk", "choices": "nope"}',
  'data: {"choices": [null, 7, {"index": -1, "delta": {"content": "negative index"}}, {"index": "0", "delta": {"content": "string index"}}]}',
  'data: {"choices": [{"index": 0, "delta": {"content": 42}, "finish_reason": null}]}',
  'data: {"choices": [{"index": 0, "delta": null, "finish_reason": null}]}',
  'data: no-space',
  'data: ',
  'data: {"note": "the id is ignored"}',
  'data: empty event name',
  'foo: an unknown field',
  'retry: soon',
  ': ',
  `data: ${dataLines(chunk({}, { finish: 'stop', usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } }))[0] ?? ''}`,
  'data: [DONE]'
]

function assertHostileOutput (t: Test, body: string, url: string, imagePath: string, name: string, label: string, input: string = hostileStream(imagePath)): void {
  t.equal(contentOf(body), hostileContent(imagePath, url, name), `${label}: the text, with both references rewritten`)
  const others = (text: string): string[] => rawEvents(text).filter((block) => !isContentChunk(dataLines(block)[0] ?? ''))
  const sent = others(input)
  // Nothing after [DONE] is forwarded.
  const upToDone = sent.slice(0, sent.findIndex((block) => dataLines(block)[0] === '[DONE]') + 1)
  t.ok(upToDone.length >= PASSTHROUGH.length, `${label}: every kind of other event is there`)
  t.same(others(body), upToDone, `${label}: every other event once, in order, byte for byte as the upstream sent it`)
}

t.test('the hostile stream at the unit level', async (t) => {
  const input = encode(hostileStream(APPLE))
  const whole = transform([input])
  t.ok(whole.done, 'the [DONE] was seen')
  assertHostileOutput(t, whole.out.join(''), APPLE_URL, APPLE, 'apple.png', 'whole')
  const expected = JSON.stringify(whole.out)

  // Every single split point, including inside UTF-8 sequences and CRLF pairs.
  const failures: number[] = []
  for (let at = 1; at < input.length; at++) {
    if (JSON.stringify(transform([input.subarray(0, at), input.subarray(at)]).out) !== expected) failures.push(at)
  }
  t.same(failures, [], `all ${input.length - 1} split points give the same events`)
  t.equal(JSON.stringify(transform([...input].map((byte) => Uint8Array.of(byte))).out), expected, 'one byte at a time gives the same events')
})

t.test('a stream whose lines end in a lone CR ends as cleanly as any other', async (t) => {
  const text = [ROLE, ...contentEvents(['Here: ', `![a](${APPLE})`])].join('').replace(/\n/g, '\r') + 'data: [DONE]\r\r'
  for (const [label, chunks] of [['whole', [encode(text)]], ['split before the last CR', [encode(text.slice(0, -1)), encode('\r')]]] as const) {
    const { out, done } = transform([...chunks])
    t.ok(done, `${label}: the final [DONE] is seen at the end of the body`)
    t.equal(out.at(-1), 'data: [DONE]\r\r', `${label}: and forwarded last, as it came`)
    t.equal(contentOf(out.join('')), `Here: ![a](${APPLE_URL})`, `${label}: the text is rewritten`)
  }
  const cut = transform([encode('data: {"a": 1}\r\rdata: [DONE]\r')])
  t.notOk(cut.done, 'a line ended by CR without its blank line is not an event')
})

async function chat (proxy: Proxy, pieces: Array<string | Buffer>): Promise<string> {
  proxy.upstream.handle(sse(pieces))
  const res = await postJson(proxy.gate.url, '/v1/chat/completions', CHAT)
  if (res.status !== 200) throw new Error(`status ${res.status}`)
  return res.text
}

t.test('the hostile stream through the proxy, whole and cut into pieces', async (t) => {
  const proxy = await startProxy(t)
  const text = hostileStream(IMAGE_PATH)
  const bytes = Buffer.from(text, 'utf8')
  const whole = await chat(proxy, [text])
  assertHostileOutput(t, whole, proxy.gate.link(IMAGE_NAME), IMAGE_PATH, IMAGE_NAME, 'whole')
  t.equal(await chat(proxy, splitBytes(text)), whole, 'cut into 1 to 7 bytes: the same response')
  t.equal(await chat(proxy, [...bytes].map((byte) => Buffer.of(byte))), whole, 'one byte per write: the same response')
  const crlf = text.replace(/\r\n|\r|\n/g, '\r\n')
  assertHostileOutput(t, await chat(proxy, [crlf]), proxy.gate.link(IMAGE_NAME), IMAGE_PATH, IMAGE_NAME, 'every line ending made CRLF', crlf)

  const crOnly = [ROLE, ...contentEvents(['Here: ', `![a](${IMAGE_PATH})`]), DONE].join('').replace(/\n/g, '\r')
  const answer = await chat(proxy, [crOnly])
  t.equal(dataLines(answer).at(-1), '[DONE]', 'lone CRs: the final [DONE] comes through')
  t.notOk(answer.includes('"error"'), 'lone CRs: and no error is made up')
})

t.test('a 10 MB line passes through unchanged', async (t) => {
  const proxy = await startProxy(t)
  const progress = `event: hermes.tool.progress\ndata: {"blob": "${'A'.repeat(10 * MB)}"}\n\n`
  const body = await chat(proxy, [ROLE, progress, FINISH, DONE])
  t.equal(body, ROLE + progress + FINISH + DONE, 'a 10 MB named event: every byte unchanged')
})

t.test('a 10 MB content delta passes through unchanged', async (t) => {
  const proxy = await startProxy(t)
  const events = [ROLE, ...contentEvents(['x'.repeat(10 * MB)]), FINISH, DONE]
  const body = await chat(proxy, events)
  t.notOk(body.includes('"error"'), 'no error event')
  t.ok(body === events.join(''), 'every byte unchanged')
})

t.test(`past the cap (${DEFAULT_MAX_EVENT_SIZE / MB} MiB per event) the client gets an error event and imagegate keeps serving`, async (t) => {
  const warnings = watchWarnings(t)
  const proxy = await startProxy(t)
  const before = [ROLE, ...contentEvents(['Before the flood.'])].join('')
  const check = (body: string, label: string): void => {
    const data = dataLines(body)
    t.equal(contentOf(body), 'Before the flood.', `${label}: what came before is delivered`)
    t.equal(data.at(-1), TOO_LARGE, `${label}: the last event is the error`)
    t.notOk(data.includes('[DONE]'), `${label}: no [DONE] after it`)
    t.ok(body.length < 4096, `${label}: nothing of the flood is forwarded`)
  }

  // An upstream that never stops sending one line: imagegate must stop reading it.
  proxy.upstream.handle(async (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write(before + 'data: {"blob": "')
    const block = Buffer.alloc(MB, 'A')
    while (!res.destroyed) {
      if (!res.write(block)) await drained(res)
    }
  })
  const closed = proxy.upstream.closed()
  const endless = await postJson(proxy.gate.url, '/v1/chat/completions', CHAT)
  check(endless.text, 'an endless line')
  await within(closed, SOON_MS, 'an endless line: the upstream request was closed')
  t.pass('an endless line: the upstream request was closed')

  const lines = Array.from({ length: DEFAULT_MAX_EVENT_SIZE / MB + 1 }, () => `data: ${'B'.repeat(MB)}\n`)
  check(await chat(proxy, [before, ...lines, '\n', DONE]), 'one event of many 1 MiB data lines')

  t.equal((await postJson(proxy.gate.url, '/v1/chat/completions', CHAT)).status, 200, 'the next request is served')
  // The endless upstream waited for a drain on every full buffer; none left a listener.
  t.same(warnings(), [], 'no process warning (a listener left per write would be one)')
})

t.test('invalid JSON shaped like content chunks in two choices passes through, and the process lives', async (t) => {
  const proxy = await startProxy(t)
  const hostile = [0, 1].map((index) => `data: x{"choices": [{"index": ${index}, "delta": {"content": "![a](/root/.hermes/cac"}, "finish_reason": null}]\n\n`)
  for (const [label, tail] of [['at [DONE]', [DONE]], ['at the end of the body', []]] as const) {
    const body = await chat(proxy, [ROLE, ...hostile, ...tail])
    for (const event of hostile) t.ok(body.includes(event), `${label}: forwarded unchanged`)
    if (tail.length > 0) t.equal(dataLines(body).at(-1), '[DONE]', `${label}: then [DONE]`)
    else t.equal(dataLines(body).at(-1), BROKEN, `${label}: an answer without a finish ends with the error event`)
  }
  t.equal((await postJson(proxy.gate.url, '/v1/chat/completions', CHAT)).status, 200, 'the next request is served')
})

t.test('invalid JSON shaped like a content chunk loses no held text', async (t) => {
  const input = 'data: x{"choices": [{"index": 0, "delta": {"content": "![a](/c/x"}, "finish_reason": null}]\n\ndata: [DONE]\n\n'
  let out: string[] = []
  let thrown: unknown
  try {
    out = transform([encode(input)]).out
  } catch (err) {
    thrown = err
  }
  t.equal(thrown, undefined, 'the transform does not throw')
  t.ok(out.join('').includes('![a](/c/x'), 'the text reaches the client')
  t.ok(out.at(-1) === DONE, '[DONE] is last')
})
