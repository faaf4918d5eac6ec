// The Responses API (`/v1/responses`), streamed and not, through the real proxy.
import t from 'tap'
import { dataLines, pathAndQuery } from '../fixtures/gate.js'
import { IMAGE_NAME, IMAGE_PATH, PNG, hermesFixture } from '../fixtures/hermes.js'
import { postJson, send } from '../fixtures/http.js'
import { startProxy } from '../fixtures/proxy.js'

const REQUEST = '{"model": "hermes-agent", "stream": true, "input": "draw an apple"}'

type Event = Record<string, any>

t.test('the recorded Responses stream: every text rewritten, numbering and the rest intact', async (t) => {
  const { upstream, gate } = await startProxy(t)
  const recorded = hermesFixture('hermes-responses-stream.sse')
  // One event per write, as hermes sends them.
  upstream.handle(async (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    for (const block of recorded.split('\n\n').filter((b) => b.length > 0)) res.write(block + '\n\n')
    res.end()
  })
  for (const path of ['/v1/responses', '/responses']) {
    const res = await postJson(gate.url, path, REQUEST)
    t.equal(res.status, 200, `${path}: ok`)
    t.equal(res.headers['content-type'], 'text/event-stream', `${path}: an event stream`)
    t.equal(upstream.requests.at(-1)?.url, '/v1/responses', `${path}: reaches the upstream's /v1/responses`)
    const events = dataLines(res.text).map((data) => JSON.parse(data) as Event)
    const link = gate.link(IMAGE_NAME)
    const expected = hermesFixture('hermes-chat-stream.expected.txt').replace(IMAGE_PATH, link)
    t.equal(events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join(''), expected, `${path}: deltas`)
    t.equal(events.find((e) => e.type === 'response.output_text.done')?.text, expected, `${path}: done text`)
    t.equal(events.find((e) => e.type === 'response.output_item.done')?.item.content[0].text, expected, `${path}: done item`)
    t.equal(events.find((e) => e.type === 'response.completed')?.response.output[0].content[0].text, expected, `${path}: completed output`)
    t.same(events.map((e) => e.sequence_number), [0, 1, 2, 3, 4, 5, 6, 7, 8], `${path}: sequence numbers in order`)
    t.match(res.text, /^event: response\.created\ndata: \{"type": "response\.created"/, `${path}: untouched events keep their bytes`)
  }
  const image = await send(gate.url, { path: pathAndQuery(gate.link(IMAGE_NAME)) })
  t.same(image.body, PNG, 'the linked image is served')
})

t.test('a non-streaming response object is rewritten', async (t) => {
  const { upstream, gate } = await startProxy(t)
  const body = JSON.stringify({
    id: 'resp_1',
    object: 'response',
    status: 'completed',
    output: [{ id: 'msg_1', type: 'message', role: 'assistant', content: [{ type: 'output_text', text: `Here:\n\nMEDIA:${IMAGE_PATH}`, annotations: [] }] }],
    output_text: `Here:\n\nMEDIA:${IMAGE_PATH}`,
    usage: { input_tokens: 5, output_tokens: 7, total_tokens: 12 }
  })
  upstream.handle((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end(body) })
  const res = await postJson(gate.url, '/v1/responses', '{"model": "hermes-agent", "input": "x"}')
  const got = JSON.parse(res.text) as Event
  const text = `Here:\n\n![${IMAGE_NAME}](${gate.link(IMAGE_NAME)})`
  t.equal(got.output[0].content[0].text, text, 'output text rewritten')
  t.equal(got.output_text, text, 'output_text rewritten')
  t.same(got.usage, { input_tokens: 5, output_tokens: 7, total_tokens: 12 }, 'usage intact')
  upstream.handle((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('{"id": "resp_2", "output": []}') })
  const plain = await postJson(gate.url, '/v1/responses', '{}')
  t.equal(plain.text, '{"id": "resp_2", "output": []}', 'nothing to rewrite: the bytes as they came')
})
