import { readFileSync } from 'node:fs'
import t from 'tap'
import fc from 'fast-check'
import { createChatCompletionsHandler, MAX_CHOICES } from '../../src/sse/chat-completions.js'
import { createEventStream } from '../../src/sse/event-stream.js'
import { createRewriter } from '../../src/rewrite/rewriter.js'
import { fakeResolve } from '../fixtures/resolve.js'
import { DONE, FINISH, ROLE, chunk, contentEvents } from '../fixtures/chat.js'
import { dataLines, rawEvents } from '../fixtures/gate.js'
import { cutAt } from '../fixtures/split.js'

const APPLE = '/root/.hermes/cache/images/openai_codex_gpt-image-2-medium_20260424_143801_f2c2ad0c.png'
const resolve = fakeResolve({ [APPLE]: 'image', '/c/x.png': 'image' })
const APPLE_URL = 'http://gate.test/images/openai_codex_gpt-image-2-medium_20260424_143801_f2c2ad0c.png'
/** The whole text through one rewriter: what every split of it must give. */
function whole (text: string): string {
  const rewriter = createRewriter({ resolve })
  return rewriter.push(text) + rewriter.end()
}
const fixtures = new URL('../fixtures/hermes/', import.meta.url)
const FIXTURE = readFileSync(new URL('hermes-chat-stream.sse', fixtures), 'utf8')
const EXPECTED = readFileSync(new URL('hermes-chat-stream.expected.txt', fixtures), 'utf8')

function transform (chunks: Array<string | Uint8Array>, options: { dropNamedEvents?: boolean } = {}): { out: string[], complete: boolean, done: boolean } {
  const handler = createChatCompletionsHandler(() => createRewriter({ resolve }), options)
  const stream = createEventStream(handler)
  const out: string[] = []
  for (const piece of chunks) out.push(stream.feed(typeof piece === 'string' ? new TextEncoder().encode(piece) : piece).toString())
  out.push(stream.end().toString())
  return { out: rawEvents(out.join('')), complete: handler.complete, done: handler.done }
}

/** Per choice index, the concatenated delta content. */
function contentByChoice (out: string[]): Map<number, string> {
  const texts = new Map<number, string>()
  for (const data of dataLines(out.join(''))) {
    if (data === '[DONE]' || !data.startsWith('{"id"')) continue
    for (const choice of (JSON.parse(data) as { choices: Array<{ index: number, delta: { content?: string } }> }).choices) {
      texts.set(choice.index, (texts.get(choice.index) ?? '') + (choice.delta.content ?? ''))
    }
  }
  return texts
}

t.test('the hermes fixture: the split path is rewritten, every other event is byte-identical', async (t) => {
  const { out, done } = transform([FIXTURE])
  t.ok(done, '[DONE] seen')
  t.equal(contentByChoice(out).get(0), EXPECTED.replace(APPLE, APPLE_URL), 'content is the expected text with the URL')
  const inputBlocks = FIXTURE.split('\n\n').filter((b) => b.length > 0).map((b) => b + '\n\n')
  const passthrough = inputBlocks.filter((b) => !b.includes('"content"'))
  for (const block of passthrough) t.ok(out.includes(block), `forwarded unchanged: ${block.slice(0, 60).trim()}`)
  t.equal(out.at(-1), DONE, '[DONE] is last')
  const withoutContent = out.filter((b) => !b.includes('"content"'))
  t.same(withoutContent, passthrough, 'non-content events in the same order')
  t.equal(out.length, inputBlocks.length, 'one output event per input event')
})

t.test('dropNamedEvents drops every named event but message, and nothing else', async (t) => {
  const named = 'event: hermes.tool.progress\ndata: {"tool": "image_generate", "status": "running"}\n\n'
  const otherName = 'event: ping\ndata: {}\n\n'
  const message = 'event: message\ndata: {"id":"c","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n'
  const input = [ROLE, named, ': keepalive\n\n', otherName, message, ...contentEvents(['a ', 'b']), DONE]
  const kept = transform(input).out
  t.ok(kept.includes(named), 'off (the default): the named event is forwarded')
  const { out, done } = transform(input, { dropNamedEvents: true })
  t.ok(done, '[DONE] seen')
  t.notOk(out.some((block) => block.includes('hermes.tool.progress') || block.includes('event: ping')), 'no named event is left')
  t.same(out, kept.filter((block) => block !== named && block !== otherName), 'every other event, comment and event: message is forwarded in order')
  t.ok(out.some((block) => block.startsWith('event: message\n')), 'an event named message is a chat chunk and stays')
})

t.test('held text is flushed in a chunk of its own before the finish chunk', async (t) => {
  const events = [...contentEvents(['Look ', '![a](/c/x']), chunk({}, { finish: 'stop', usage: { total_tokens: 3 } }), DONE]
  const { out, complete } = transform(events)
  t.ok(complete, 'the choice finished')
  const data = dataLines(out.join(''))
  t.equal(JSON.parse(data[1]!).choices[0].delta.content, '', 'the held piece sends empty content')
  const release = JSON.parse(data[2]!)
  t.same(release.choices, [{ index: 0, delta: { content: '![a](/c/x' }, finish_reason: null }], 'released text, untouched')
  t.notOk('usage' in release, 'the release chunk carries no usage')
  t.equal(release.id, 'chatcmpl-test', 'release chunk keeps the id')
  t.match(data[3]!, /"finish_reason": "stop"/, 'then the original finish chunk, byte-identical')
})

t.test('content and finish in the same chunk', async (t) => {
  const { out } = transform([chunk({ content: 'MEDIA:/c/x.png' }, { finish: 'stop' }), DONE])
  t.equal(contentByChoice(out).get(0), '![x.png](http://gate.test/images/x.png)', 'a bare MEDIA path at the finish is complete')
})

t.test('held text is flushed at [DONE] and at the end of the upstream', async (t) => {
  const atDone = transform([...contentEvents(['a ![b](/c/x.png']), DONE])
  t.equal(contentByChoice(atDone.out).get(0), 'a ![b](/c/x.png', 'flushed before [DONE]')
  t.equal(atDone.out.at(-1), DONE, '[DONE] last')
  const atEnd = transform([...contentEvents(['a MEDIA:/c/x.png'])])
  t.equal(contentByChoice(atEnd.out).get(0), 'a ![x.png](http://gate.test/images/x.png)', 'flushed and completed at the end')
  t.notOk(atEnd.complete, 'an answer without finish is not complete')
})

t.test('two choices interleaved keep separate state', async (t) => {
  const a = ['A: ', '![', 'x](', '/c/', 'x.png', ') end']
  const b = ['B: ', 'MEDIA', ':/c/', 'x.png', '\n', 'done']
  const events: string[] = []
  for (let i = 0; i < a.length; i++) events.push(chunk({ content: a[i] }, { index: 0 }), chunk({ content: b[i] }, { index: 1 }))
  events.push(chunk({}, { index: 0, finish: 'stop' }), chunk({}, { index: 1, finish: 'stop' }), DONE)
  const texts = contentByChoice(transform(events).out)
  t.equal(texts.get(0), 'A: ![x](http://gate.test/images/x.png) end', 'choice 0')
  t.equal(texts.get(1), 'B: ![x.png](http://gate.test/images/x.png)\ndone', 'choice 1')
})

t.test('what is not a chat chunk passes through', async (t) => {
  const odd = [
    'data: not json\n\n', 'data: [1,2]\n\n', 'data: ["content", "![a](/c/x.png)"]\n\n', 'data: {"choices": "x", "content": 1}\n\n',
    'data: {"choices": [null, {"index": -1, "delta": {"content": "![a](/c/x.png)"}}]}\n\n',
    // Shaped like a content chunk, but `\q` is no JSON escape.
    'data: {"choices": [{"index": 0, "delta": {"content": "![a](/c/x.png) \\q"}, "finish_reason": null}]}\n\n',
    DONE
  ]
  t.same(transform(odd).out, odd, 'unchanged, in order')
  const tools = chunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"p": "![a](/c/x.png)"}' } }] })
  t.same(transform([tools]).out, [tools], 'tool call arguments are not content')
  const reasoning = chunk({ reasoning_content: 'think ![a](/c/x.png)' })
  t.same(transform([reasoning]).out, [reasoning], 'reasoning is not content')
})

t.test('text held from a chunk that is no JSON object is released in a bare chunk', async (t) => {
  // Shaped like a content chunk (so it takes the fast path), but the trailing comma makes
  // the whole event invalid JSON: its fields cannot be reused for the release.
  const cut = 'data: {"id": "chatcmpl-test", "choices": [{"index": 0, "delta": {"content": "see ![a](/c/x"}, "finish_reason": null}],}\n\n'
  const { out } = transform([cut])
  t.equal(out[0], cut.replace('see ![a](/c/x', 'see '), 'the chunk goes out with the text before the reference')
  t.same(JSON.parse(dataLines(out[1] ?? '')[0] ?? ''), {
    object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: '![a](/c/x' }, finish_reason: null }]
  }, 'the held text follows in a chunk with only the fields a client needs')
  t.equal(out.length, 2, 'nothing else')
})

t.test('choices past the cap pass through unrewritten', async (t) => {
  const events = Array.from({ length: MAX_CHOICES + 1 }, (_, index) => chunk({ content: '![a](/c/x.png)' }, { index }))
  const texts = contentByChoice(transform(events).out)
  t.equal(texts.get(0), '![a](http://gate.test/images/x.png)', 'first choice rewritten')
  t.equal(texts.get(MAX_CHOICES), '![a](/c/x.png)', 'the choice past the cap is left alone')
  // The same past the cap on the parser's paths: a chunk with an id line (not taken on
  // its bytes, then matched by shape) and a chunk of two choices (read whole).
  const withId = (text: string): string => `id: ${MAX_CHOICES}\n${chunk({ content: text }, { index: MAX_CHOICES })}`
  const twoChoices = `data: {"choices":[{"index":0,"delta":{"content":" b"},"finish_reason":null},{"index":${MAX_CHOICES},"delta":{"content":"![b](/c/x.png)"},"finish_reason":null}]}\n\n`
  const out = transform([...events, withId('![c](/c/x.png)'), twoChoices]).out
  t.equal(out.at(-2), withId('![c](/c/x.png)'), 'a chunk with an id line goes out as it came')
  t.equal(out.at(-1), twoChoices, 'a chunk of two choices goes out as it came, the first had nothing to change')
})

// A whole stream with references split at random delta boundaries, then cut into raw
// byte chunks at random offsets (inside UTF-8 sequences, CRLF pairs, JSON escapes).
const fragment = fc.constantFrom('![a](/c/x.png)', 'MEDIA:/c/x.png', '![n](/etc/passwd)', '`![a](/c/x.png)`', '🍎', 'é', '\n', 'text ', '!', '```\n', 'M')
const scenario = fc.record({
  text: fc.array(fragment, { maxLength: 15 }).map((parts) => parts.join('')),
  deltaCuts: fc.uniqueArray(fc.integer({ min: 1, max: 200 }), { maxLength: 10 }),
  byteCuts: fc.uniqueArray(fc.integer({ min: 1, max: 5000 }), { maxLength: 15 }),
  crlf: fc.boolean()
})

t.test('chunk invariance over deltas and raw bytes', async (t) => {
  fc.assert(fc.property(scenario, ({ text, deltaCuts, byteCuts, crlf }) => {
    const pieces = cutAt(text, deltaCuts.filter((cut) => cut < text.length))
    let wire = [ROLE, ...contentEvents(pieces), FINISH, DONE].join('')
    if (crlf) wire = wire.replace(/\n/g, '\r\n')
    const bytes = new TextEncoder().encode(wire)
    const chunks = cutAt(bytes, byteCuts.filter((c) => c < bytes.length))
    return contentByChoice(transform(chunks).out).get(0) === whole(text)
  }), { numRuns: 1500 })
  t.pass('1500 random delta and byte splits agree with the whole-text rewrite')
})

t.test('a changed chunk the raw text cannot be edited in keeps its meaning', async (t) => {
  // The key spelled with an escape: JSON.parse reads `content`, the raw text has no
  // `"content"`. Such a chunk is looked at only while text is held (no provider writes it).
  const escaped = 'data: {"id":"c","choices":[{"index":0,"delta":{"cont\\u0065nt":".png) done"},"finish_reason":null}]}\n\n'
  const out = transform([...contentEvents(['see ![a](/c/x']), escaped, DONE]).out
  t.same(JSON.parse(dataLines(out[1] ?? '')[0] ?? ''), { id: 'c', choices: [{ index: 0, delta: { content: '![a](http://gate.test/images/x.png) done' }, finish_reason: null }] }, 'serialized again, with the link')
  t.equal(transform([escaped, DONE]).out[0], escaped, 'with nothing held it is not looked at')
  // Data over two lines, with an id: written again as one event.
  const split = 'id: 7\ndata: {"id":"c","choices":[{"index":0,"delta":{"content":"see ![a](/c/x.png)"},\ndata: "finish_reason":null}]}\n\n'
  const again = transform([split, DONE]).out
  t.equal(again[0]?.startsWith('id: 7\ndata: '), true, 'the id is kept')
  t.equal(JSON.parse(dataLines(again[0] ?? '')[0] ?? '').choices[0].delta.content, 'see ![a](http://gate.test/images/x.png)', 'and the text rewritten')
})

t.test('a chunk of a holding choice without a delta object releases the held text', async (t) => {
  const nothing = 'data: {"choices":[{"index":0,"delta":null,"finish_reason":null}]}\n\n'
  const out = transform([...contentEvents(['Look !']), nothing, DONE]).out
  t.equal(JSON.parse(dataLines(out[0] ?? '')[0] ?? '').choices[0].delta.content, 'Look ', 'the text without its !')
  t.equal(JSON.parse(dataLines(out[1] ?? '')[0] ?? '').choices[0].delta.content, '!', 'the ! released before the chunk without a delta')
  t.equal(out[2], nothing, 'which goes out as it came')
})

t.test('while text is held, a comment goes out as it came; a changed chunk over two data lines is written again', async (t) => {
  const out = transform([...contentEvents(['Look !']), ': keepalive\n\n', DONE]).out
  t.equal(out[1], ': keepalive\n\n', 'the comment, as it came')
  const twoLines = 'data: {"choices":[{"delta":{"content":"see ![a](/c/x.png)"},"index":0,\ndata: "finish_reason":null}]}\n\n'
  const again = transform([twoLines, DONE]).out
  t.equal(JSON.parse(dataLines(again[0] ?? '')[0] ?? '').choices[0].delta.content, 'see ![a](http://gate.test/images/x.png)', 'rewritten')
  t.equal(again[0]?.split('\n').filter((line) => line.startsWith('data: ')).length, 2, 'over two data lines again')
})

t.test('the common content chunk is taken on its bytes: forwarded unparsed, or changed only inside its text', async (t) => {
  const handler = createChatCompletionsHandler(() => createRewriter({ resolve }))
  const out: Array<Buffer | string> = []
  const inspect = (event: string, lines = 1): string => {
    const buf = Buffer.from(event)
    return handler.inspect({ buf, start: 0, end: buf.length, lines }, out)
  }
  const hermes = (text: string): string => `data: {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {"content": ${JSON.stringify(text)}}, "finish_reason": null}]}\n\n`
  t.equal(inspect(chunk({ role: 'assistant' })), 'forward', 'a role chunk')
  t.equal(inspect(hermes('Here you go')), 'forward', 'plain words')
  t.equal(inspect(hermes('line\nbreak \u2014 "quoted"')), 'forward', 'escaped text that changes nothing')
  t.equal(out.length, 0, 'nothing written for them')

  t.equal(inspect(hermes(' see ![an apple](/c/x.png) here')), 'replaced', 'a whole reference')
  t.equal(out.map(String).join(''), hermes(' see ![an apple](http://gate.test/images/x.png) here'), 'the event with only its text changed')
  out.length = 0

  t.equal(inspect(hermes('Look ![')), 'replaced', 'a reference that starts')
  t.equal(out.map(String).join(''), hermes('Look '), 'its start is held')
  out.length = 0
  t.equal(inspect(hermes('a](/c/x.png) ok')), 'replaced', 'the chunk that completes it is taken on its bytes too')
  t.equal(out.map(String).join(''), hermes('![a](http://gate.test/images/x.png) ok'), 'with the held start and the link')
  out.length = 0
  t.equal(inspect(hermes('Look !')), 'replaced', 'text held again')
  out.length = 0
  t.equal(inspect(chunk({ tool_calls: [{ index: 0, id: 't', type: 'function', function: { name: 'f', arguments: '' } }] })), 'decode', 'while text is held, a chunk without text is parsed: it may release it')

  const fresh = createChatCompletionsHandler(() => createRewriter({ resolve }))
  const buf = Buffer.from(hermes('x'))
  t.equal(fresh.inspect({ buf, start: 0, end: buf.length, lines: 2 }, out), 'decode', 'an event of two lines is parsed')
  const error = Buffer.from('data: {"error": {"message": "m"}, "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": null}]}\n\n')
  t.equal(fresh.inspect({ buf: error, start: 0, end: error.length, lines: 1 }, out), 'decode', 'a chunk with an error is parsed')
  const bad = Buffer.from('data: {"choices": [{"index": 0, "delta": {"content": "bad \\x escape"}, "finish_reason": null}]}\n\n')
  t.equal(fresh.inspect({ buf: bad, start: 0, end: bad.length, lines: 1 }, out), 'decode', 'a text that is no JSON string is parsed')
})

t.test('choices past the cap are forwarded on their bytes too', async (t) => {
  const handler = createChatCompletionsHandler(() => createRewriter({ resolve }))
  const out: Array<Buffer | string> = []
  for (let index = 0; index <= MAX_CHOICES; index++) {
    const buf = Buffer.from(`data: {"choices": [{"index": ${index}, "delta": {"content": "![a](/c/x.png)"}, "finish_reason": null}]}\n\n`)
    const verdict = handler.inspect({ buf, start: 0, end: buf.length, lines: 1 }, out)
    t.equal(verdict, index < MAX_CHOICES ? 'replaced' : 'forward', `choice ${index}`)
  }
})
