// The official OpenAI SDK against imagegate: every call is made twice, once straight to
// the mock agent and once through imagegate, and the two results must differ only where
// imagegate rewrote an image path.
import OpenAI, { APIError } from 'openai'
import t from 'tap'
import type { Test } from 'tap'
import type { Gate } from '../fixtures/gate.js'
import { DONE, ROLE, chunk, contentEvents, pyJson } from '../fixtures/chat.js'
import { sse } from '../fixtures/mock-upstream.js'
import type { MockHandler, MockUpstream } from '../fixtures/mock-upstream.js'
import { startProxy } from '../fixtures/proxy.js'
import { solidPng } from '../fixtures/png.js'
import { SOON_MS, within } from '../fixtures/within.js'
import { errorBody } from '../../src/errors.js'

const IMAGE = solidPng(64, 48)
const IMAGE_NAME = 'openai_codex_gpt-image-2-medium_20260424_143801_f2c2ad0c.png'
const IMAGE_PATH = `/root/.hermes/cache/images/${IMAGE_NAME}`
const ANSWER = `Here you go — a simple red apple 🍎:\n\n![Simple red apple on white background](${IMAGE_PATH})\n\nWant a green one too?`
const USAGE = { prompt_tokens: 1843, completion_tokens: 61, total_tokens: 1904 }
const MESSAGES = [{ role: 'user' as const, content: 'draw an apple' }]

const PROGRESS = 'event: hermes.tool.progress\ndata: {"tool": "image_generate", "emoji": "\\ud83c\\udfa8", "label": "image_generate: a simple red apple", "toolCallId": "call_8d1f", "status": "running"}\n\n'
const TOOL_CALL = [
  chunk({ tool_calls: [{ index: 0, id: 'call_8d1f', type: 'function', function: { name: 'image_generate', arguments: '' } }] }),
  ...['{"prompt"', ': "a simple', ' red apple"}'].map((piece) => chunk({ tool_calls: [{ index: 0, function: { arguments: piece } }] }))
]
const FINISH = chunk({}, { finish: 'stop', usage: USAGE })

/** The answer one character per delta, so the path is split across dozens of events. */
const STREAM = [ROLE, ...TOOL_CALL, PROGRESS, ': keepalive\n\n', ...contentEvents([...ANSWER]), FINISH, DONE]

const NONSTREAM = `{"id": "chatcmpl-3f9c1a7e5b2d4c8e9a0b1c2d3e4f5", "object": "chat.completion", "created": 1777026000, "model": "hermes-agent", "choices": [{"index": 0, "message": {"role": "assistant", "content": ${pyJson(`Done.\n\nMEDIA:${IMAGE_PATH}\n\nThe file is also in your cache.`)}}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 1200, "completion_tokens": 20, "total_tokens": 1220}}`

const MODELS = '{"object": "list", "data": [{"id": "hermes-agent", "object": "model", "created": 1777026000, "owned_by": "hermes"}]}'

interface Setup { upstream: MockUpstream, gate: Gate, direct: OpenAI, viaGate: OpenAI, served: string }

async function setup (t: Test, handler: MockHandler, options: { dropNamedEvents?: boolean } = {}): Promise<Setup> {
  const cache = t.testdir({ [IMAGE_NAME]: IMAGE })
  const { upstream, gate } = await startProxy(t, { options: { cacheDirs: [cache], ...options }, upstream: handler })
  // No retries: a retried request would hide what the first answer was.
  const client = (baseURL: string): OpenAI => new OpenAI({ baseURL, apiKey: 'k', maxRetries: 0 })
  return { upstream, gate, direct: client(upstream.url), viaGate: client(`${gate.url}/v1`), served: gate.link(IMAGE_NAME) }
}

/** A handler that answers JSON with hermes' content type. */
function json (body: string): MockHandler {
  return (_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end(body) }
}

type Chunk = OpenAI.Chat.Completions.ChatCompletionChunk

async function streamChunks (client: OpenAI): Promise<Chunk[]> {
  const stream = await client.chat.completions.create({ model: 'hermes-agent', messages: MESSAGES, stream: true })
  const chunks: Chunk[] = []
  for await (const piece of stream) chunks.push(piece)
  return chunks
}

const textOf = (chunks: Chunk[]): string => chunks.map((c) => c.choices?.[0]?.delta?.content ?? '').join('')

/** A chunk with its text removed, to compare everything else. */
function withoutText (piece: Chunk): unknown {
  const copy = structuredClone(piece)
  for (const choice of copy.choices ?? []) delete choice.delta.content
  return copy
}

t.test('streaming: text, tool calls and usage arrive as the upstream sent them, the path rewritten', async (t) => {
  const { direct, viaGate, served } = await setup(t, sse(STREAM))

  const expected = await streamChunks(direct)
  const got = await streamChunks(viaGate)

  t.equal(textOf(expected), ANSWER, 'control: straight from the upstream the SDK assembles the raw answer')
  t.equal(textOf(got), ANSWER.replace(IMAGE_PATH, served), 'through imagegate the same text, only the path replaced by the served URL')
  t.equal(got.length, expected.length, 'the same number of chunks')
  t.strictSame(got.map(withoutText), expected.map(withoutText), 'every chunk but its text (ids, roles, tool calls, tool progress events, finish, usage) is identical')

  const toolCalls = got.flatMap((c) => c.choices?.[0]?.delta?.tool_calls ?? [])
  t.equal(toolCalls[0]?.function?.name, 'image_generate', 'the tool call delta names the tool')
  t.equal(toolCalls.map((call) => call.function?.arguments ?? '').join(''), '{"prompt": "a simple red apple"}', 'tool call arguments reassemble')
  const last = got[got.length - 1]
  t.equal(last?.choices?.[0]?.finish_reason, 'stop', 'the final chunk finishes the answer')
  t.strictSame(last?.usage, USAGE, 'and carries the upstream usage')
  t.ok(got.some((c) => (c as unknown as { tool?: string }).tool === 'image_generate'),
    'hermes tool progress events reach the SDK as they do straight from the upstream')

  const response = await fetch(served)
  t.equal(response.status, 200, 'the served URL answers')
  t.equal(response.headers.get('content-type'), 'image/png', 'with a PNG')
  t.same(Buffer.from(await response.arrayBuffer()), IMAGE, 'byte for byte the file from the cache dir')
})

t.test('with dropNamedEvents the SDK sees only chat chunks, each with choices', async (t) => {
  const { direct, viaGate, served } = await setup(t, sse(STREAM), { dropNamedEvents: true })

  const expected = await streamChunks(direct)
  const got = await streamChunks(viaGate)

  const withoutChoices = (chunks: Chunk[]): Chunk[] => chunks.filter((c) => !Array.isArray(c.choices))
  t.equal(withoutChoices(expected).length, 1, 'control: straight from the upstream the SDK yields the progress event as a chunk without choices')
  t.same(withoutChoices(got), [], 'through imagegate no chunk lacks choices')
  t.equal(got.length, expected.length - 1, 'one chunk fewer: the progress event')
  t.strictSame(got.map(withoutText), expected.filter((c) => Array.isArray(c.choices)).map(withoutText), 'every chat chunk is the same as straight from the upstream')
  t.equal(textOf(got), ANSWER.replace(IMAGE_PATH, served), 'the text is rewritten')
})

t.test('non-streaming: the message content is rewritten, every other field is exact', async (t) => {
  const { direct, viaGate, served } = await setup(t, json(NONSTREAM))

  const expected = await direct.chat.completions.create({ model: 'hermes-agent', messages: MESSAGES })
  const got = await viaGate.chat.completions.create({ model: 'hermes-agent', messages: MESSAGES })

  t.equal(got.choices[0]?.message.content, `Done.\n\n![${IMAGE_NAME}](${served})\n\nThe file is also in your cache.`,
    'the MEDIA tag became a markdown image of the served URL')
  t.strictSame(got.usage, { prompt_tokens: 1200, completion_tokens: 20, total_tokens: 1220 }, 'usage is exact')
  const strip = (completion: OpenAI.Chat.Completions.ChatCompletion): unknown => {
    const copy = structuredClone(completion)
    for (const choice of copy.choices) choice.message.content = null
    return copy
  }
  t.strictSame(strip(got), strip(expected), 'id, model, created, role, finish_reason and usage are what the upstream sent')
})

/** Writes `pieces`, waits until they left, then destroys the socket: a crashing upstream. */
function crashAfter (pieces: string[]): MockHandler {
  return async (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    for (const piece of pieces) await new Promise<void>((resolve) => res.write(piece, () => resolve()))
    res.destroy()
  }
}

const CUT = ANSWER.slice(0, ANSWER.indexOf('.hermes'))
const EXPECTED_ERROR = { ...errorBody('upstream_stream_error').error }

/** Iterates a stream to its end or its error; returns the text seen and the error. */
async function drain (client: OpenAI): Promise<{ text: string, error: unknown }> {
  const stream = await client.chat.completions.create({ model: 'hermes-agent', messages: MESSAGES, stream: true })
  let text = ''
  try {
    for await (const piece of stream) text += piece.choices?.[0]?.delta?.content ?? ''
  } catch (error) {
    return { text, error }
  }
  return { text, error: undefined }
}

function assertCutError (t: Test, result: { text: string, error: unknown }): void {
  t.ok(result.error instanceof APIError, `the iterator throws an APIError (got ${String(result.error)})`)
  const error = result.error as APIError
  t.strictSame(error.error, EXPECTED_ERROR, 'carrying imagegate\'s whole error body')
  t.equal(error.code, 'upstream_stream_error', 'with a stable code')
  t.equal(error.type, 'upstream_error', 'and type')
  t.equal(error.message, EXPECTED_ERROR.message, 'and a readable message')
  t.equal(result.text, CUT, 'the text before the failure, held part of a path included, still arrived first')
}

t.test('an upstream that crashes mid-stream makes the SDK iterator throw, not end short', async (t) => {
  const { viaGate } = await setup(t, crashAfter([ROLE, ...contentEvents([...CUT])]))
  assertCutError(t, await drain(viaGate))
})

t.test('an upstream that ends cleanly mid-answer (no finish, no [DONE]) is an error too', async (t) => {
  const { direct, viaGate } = await setup(t, sse([ROLE, ...contentEvents([...CUT])]))

  const control = await drain(direct)
  t.equal(control.error, undefined, 'control: straight from the upstream the SDK ends without an error')
  t.equal(control.text, CUT, 'control: and silently returns the short answer')

  assertCutError(t, await drain(viaGate))
})

t.test('breaking out of the SDK iterator stops the agent run upstream', async (t) => {
  const { upstream, viaGate } = await setup(t, sse([ROLE, ...contentEvents(['one', ' two', ' three'])], { end: false }))
  const closed = upstream.closed()
  const stream = await viaGate.chat.completions.create({ model: 'hermes-agent', messages: MESSAGES, stream: true })
  let text = ''
  for await (const piece of stream) {
    text += piece.choices?.[0]?.delta?.content ?? ''
    if (text === 'one two') break
  }
  t.equal(text, 'one two', 'the loop stopped after the second delta')
  await within(closed, SOON_MS, 'the upstream saw its request closed')
  t.pass('the upstream saw its request closed')
})

t.test('models.list() passes through', async (t) => {
  const { upstream, direct, viaGate } = await setup(t, (req, res) => {
    if (req.method === 'GET' && req.url === '/v1/models') return json(MODELS)(req, res, Buffer.alloc(0))
    res.writeHead(404).end()
  })

  const list = async (client: OpenAI): Promise<OpenAI.Models.Model[]> => {
    const models: OpenAI.Models.Model[] = []
    for await (const model of client.models.list()) models.push(model)
    return models
  }
  const expected = await list(direct)
  const got = await list(viaGate)

  t.strictSame(got, [{ id: 'hermes-agent', object: 'model', created: 1777026000, owned_by: 'hermes' }], 'the model list')
  t.strictSame(got, expected, 'is what the upstream answers')
  const seen = upstream.requests[upstream.requests.length - 1]
  t.equal(seen?.url, '/v1/models', 'the SDK path reaches the upstream')
  t.equal(seen?.headers.authorization, 'Bearer k', 'with the client API key')
})
