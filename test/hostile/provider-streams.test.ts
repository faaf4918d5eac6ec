// Streams in the shapes real backends send: upstream errors end the answer without an
// error of imagegate's own, released text carries no provider extras, Mistral's content
// parts are rewritten, a held reference start never waits across a tool call, and every
// event is forwarded byte for byte unless its text changed, whatever the read splits.
import t from 'tap'
import fc from 'fast-check'
import { createChatCompletionsHandler } from '../../src/sse/chat-completions.js'
import { createEventStream } from '../../src/sse/event-stream.js'
import type { EventHandler } from '../../src/sse/event-stream.js'
import { createResponsesHandler } from '../../src/sse/responses.js'
import { createRewriter } from '../../src/rewrite/rewriter.js'
import { dataLines, rawEvents } from '../fixtures/gate.js'
import { IMAGE_NAME, IMAGE_PATH } from '../fixtures/hermes.js'
import { postJson } from '../fixtures/http.js'
import { sse } from '../fixtures/mock-upstream.js'
import { startProxy } from '../fixtures/proxy.js'
import { GROQ_ERROR_EVENT, GROQ_USAGE, HERMES_ERROR_FINISH, LLAMACPP_TIMINGS, MEDIA_THEN_NAMED_EVENT, OPENROUTER_ERROR_CHUNK, RESPONSES_FAILED, TEXT_THEN_TOOL_CALL, mistralParts, providerStreams } from '../fixtures/provider-streams.js'
import type { ProviderStream } from '../fixtures/provider-streams.js'
import { fakeResolve } from '../fixtures/resolve.js'
import { cutAt } from '../fixtures/split.js'

const resolve = fakeResolve({ '/c/x.png': 'image' })
const X_URL = 'http://gate.test/images/x.png'

/** The whole text through one rewriter, as the Responses API's `*.done` events are rewritten. */
function rewriteWhole (text: string): string {
  const rewriter = createRewriter({ resolve })
  return rewriter.push(text) + rewriter.end()
}

function handlerFor (stream: ProviderStream): EventHandler {
  return stream.path === '/v1/responses'
    ? createResponsesHandler(() => createRewriter({ resolve }), rewriteWhole)
    : createChatCompletionsHandler(() => createRewriter({ resolve }))
}

/** The stream's body in the given reads; what went out, and whether the answer was whole. */
function run (stream: ProviderStream, reads: Uint8Array[]): { text: string, complete: boolean } {
  const handler = handlerFor(stream)
  const events = createEventStream(handler)
  const out: Buffer[] = reads.map((read) => events.feed(read))
  out.push(events.end())
  return { text: Buffer.concat(out).toString('utf8'), complete: handler.complete || handler.done }
}

const whole = (stream: ProviderStream): { text: string, complete: boolean } => run(stream, [Buffer.from(stream.body)])

/** Answer text per choice or part. */
function answer (body: string): string {
  const texts = new Map<unknown, string>()
  const add = (key: unknown, piece: unknown): void => { texts.set(key, (texts.get(key) ?? '') + String(piece)) }
  for (const data of dataLines(body)) {
    let event: any
    try { event = JSON.parse(data) } catch { continue }
    if (event?.type === 'response.output_text.delta') add(event.item_id, event.delta)
    for (const choice of Array.isArray(event?.choices) ? event.choices : []) {
      const content = choice?.delta?.content
      if (typeof content === 'string') add(choice.index, content)
      if (Array.isArray(content)) for (const part of content) if (part?.type === 'text') add(choice.index, part.text)
    }
  }
  return JSON.stringify([...texts])
}

/** The events that carry no answer text, as bytes. */
const others = (body: string): string[] => rawEvents(body).filter((block) => answer(block) === '[]' && !block.includes('"delta":{"content"') && !block.includes('"delta": {"content"'))

t.test('an upstream error ends the answer: held text first, the error as it came, nothing added', async (t) => {
  const hermes = whole(HERMES_ERROR_FINISH)
  t.ok(hermes.complete, 'hermes: finish_reason "error" ends the answer')
  t.ok(hermes.text.endsWith('"delta":{"content":"!\\n\\nError: the model failed"},"finish_reason":"error"}]}\n\n'), 'hermes: the held ! goes out in the finishing chunk, before its text')

  const groq = whole(GROQ_ERROR_EVENT)
  t.ok(groq.complete, 'Groq: an error event ends the answer')
  t.equal(rawEvents(groq.text).slice(-2).join(''),
    'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp","choices":[{"index":0,"delta":{"content":"!"},"finish_reason":null}]}\n\n' +
    'event: error\ndata: {"error":{"message":"Failed to call a function.","type":"invalid_request_error","code":"tool_use_failed"}}\n\n',
    'Groq: the held ! in a chunk of its own (no x_groq), then the error event byte for byte')

  const openrouter = whole(OPENROUTER_ERROR_CHUNK)
  t.ok(openrouter.complete, 'OpenRouter: a chunk with a top-level error ends the answer')
  const blocks = rawEvents(openrouter.text)
  t.equal(dataLines(blocks.at(-3) ?? '')[0], '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp","choices":[{"index":0,"delta":{"content":"!"},"finish_reason":null}]}', 'OpenRouter: the held ! before the error chunk')
  t.equal(blocks.at(-2), rawEvents(OPENROUTER_ERROR_CHUNK.body).at(-2), 'OpenRouter: the error chunk byte for byte')

  const responses = whole(RESPONSES_FAILED)
  t.ok(responses.complete, 'Responses: error and response.failed end the answer')
  const list = dataLines(responses.text).map((data) => JSON.parse(data) as Record<string, unknown>)
  t.same(list.map((e) => [e.type, e.sequence_number, e.delta]), [
    ['response.created', 0, undefined],
    ['response.output_text.delta', 1, 'Almost'],
    ['response.output_text.delta', 2, '!'],
    ['error', 3, undefined],
    ['response.failed', 4, undefined]
  ], 'Responses: the held ! in a delta of its own before the error; later numbers shifted')
  t.equal(rawEvents(responses.text).at(-2), rawEvents(RESPONSES_FAILED.body).at(-2)?.replace('"sequence_number":2', '"sequence_number":3'), 'Responses: the error event differs only in its number')
})

t.test('chunks that release held text carry the identity fields only', async (t) => {
  const llama = rawEvents(whole(LLAMACPP_TIMINGS).text)
  t.equal(llama[2], LLAMACPP_TIMINGS.body.split('\n\n')[2]?.replace('"content":"!"', '"content":""') + '\n\n', 'llama.cpp: the delta that is only ! goes out empty, otherwise byte for byte')
  t.equal(llama[3], 'data: {"id":"c2","object":"chat.completion.chunk","created":1,"model":"q","system_fingerprint":"b6224","choices":[{"index":0,"delta":{"content":"!"},"finish_reason":null}]}\n\n', 'llama.cpp: the release chunk has no usage and no timings')
  t.equal(llama[4], LLAMACPP_TIMINGS.body.split('\n\n')[3] + '\n\n', 'llama.cpp: the finish chunk as it came')
  const groq = rawEvents(whole(GROQ_USAGE).text)
  t.notOk(groq.some((block) => block.includes('"content":"!"') && block.includes('x_groq')), 'Groq: no x_groq in the release chunk')
  t.ok(groq.some((block) => block.includes('"content":"!"')), 'Groq: the ! is released')
})

t.test('Mistral content parts: text parts are rewritten per choice, thinking parts left alone', async (t) => {
  const stream = mistralParts('/c/x.png')
  const out = rawEvents(whole(stream).text)
  const input = rawEvents(stream.body)
  t.equal(out[0], input[0], 'the thinking part, reference and all, byte for byte')
  t.equal(out[1], input[1]?.replace('"text":"Here: ![a]("', '"text":"Here: "'), 'the start of the reference is held')
  t.equal(out[2], input[2]?.replace('"text":"/c/x.png) done"', `"text":"![a](${X_URL}) done"`), 'then rewritten in its part, the padding field kept')
  t.equal(out.slice(3).join(''), input.slice(3).join(''), 'the rest as it came')
})

t.test('held text is released before a tool call or a named event', async (t) => {
  const tool = rawEvents(whole(TEXT_THEN_TOOL_CALL).text)
  const input = rawEvents(TEXT_THEN_TOOL_CALL.body)
  t.equal(dataLines(tool[1] ?? '')[0], '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp","choices":[{"index":0,"delta":{"content":"Let me look"},"finish_reason":null}]}', 'the text without its !')
  t.equal(dataLines(tool[2] ?? '')[0], '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"!"},"finish_reason":null}]}', 'the ! before the tool call, named as the tool call chunk is')
  t.same(tool.slice(3), input.slice(2), 'the tool call and all after it byte for byte: no reference spans the tool call')

  const media = rawEvents(whole(MEDIA_THEN_NAMED_EVENT).text)
  t.equal(dataLines(media[1] ?? '')[0]?.includes('"content":"Saved as "'), true, 'MEDIA is held')
  t.equal(dataLines(media[2] ?? '')[0]?.includes('"content":"MEDIA"'), true, 'and released before the named event')
  t.equal(media[3], 'event: hermes.tool.progress\ndata: {"tool":"image_generate"}\n\n', 'the named event as it came')
})

t.test('any read splits: the same bytes out, and every event without changed text byte for byte', async (t) => {
  for (const [name, stream] of Object.entries(providerStreams('/c/x.png'))) {
    const bytes = Buffer.from(stream.body)
    const expected = whole(stream)
    const plain = { ...stream, body: stream.body.replace(/!/g, '.').replace(/MEDIA/g, 'media') }
    const plainBytes = Buffer.from(plain.body)
    t.equal(whole(plain).text, plain.body, `${name}: with nothing to hold, byte for byte`)
    t.same(others(expected.text).filter((block) => !block.includes('"content":"!"') && !block.includes('"delta":"!"') && !block.includes('"content":"MEDIA"')), others(stream.body).map((block) => stream.path === '/v1/responses' ? block.replace(/"sequence_number":(\d+)/, (_, n: string) => `"sequence_number":${Number(n) >= 2 ? Number(n) + 1 : n}`) : block), `${name}: events without text as they came`)
    fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 12 }), (cuts) => {
      const same = run(stream, cutAt(bytes, cuts))
      const plainRun = run(plain, cutAt(plainBytes, cuts.filter((cut) => cut < plainBytes.length)))
      return same.text === expected.text && same.complete === expected.complete && plainRun.text === plain.body
    }), { numRuns: 300 })
    t.pass(`${name}: 300 read splits agree`)
  }
})

t.test('through imagegate: no error of its own after an upstream error, bytes kept', async (t) => {
  const { upstream, gate } = await startProxy(t)
  for (const [name, stream] of Object.entries(providerStreams(IMAGE_PATH))) {
    upstream.handle(sse([stream.body]))
    const res = await postJson(gate.url, stream.path, '{"model": "m", "stream": true, "input": "hi", "messages": []}')
    t.notOk(res.text.includes('upstream_stream_error'), `${name}: no upstream_stream_error added`)
    t.equal(answer(res.text), answer(whole({ ...stream, body: stream.body.replaceAll(IMAGE_PATH, '/c/x.png') }).text).replace(X_URL, gate.link(IMAGE_NAME)), `${name}: the same answer as the unit gives`)
  }
})

t.test('dropping named events keeps an upstream error event, and releases held text before a dropped one', async (t) => {
  const run = (stream: ProviderStream): string => {
    const events = createEventStream(createChatCompletionsHandler(() => createRewriter({ resolve }), { dropNamedEvents: true }))
    return events.feed(Buffer.from(stream.body)).toString() + events.end().toString()
  }
  t.ok(run(GROQ_ERROR_EVENT).endsWith('event: error\ndata: {"error":{"message":"Failed to call a function.","type":"invalid_request_error","code":"tool_use_failed"}}\n\n'), 'the error event still ends the stream')
  const media = rawEvents(run(MEDIA_THEN_NAMED_EVENT))
  t.notOk(media.some((block) => block.includes('hermes.tool.progress')), 'the progress event is dropped')
  t.equal(dataLines(media[2] ?? '')[0]?.includes('"content":"MEDIA"'), true, 'the held MEDIA is released where it was')
  t.equal(answer(media.join('')), answer(whole(MEDIA_THEN_NAMED_EVENT).text), 'the same answer text')
})
