// Inline images both ways: upstream data: images become stored links, and data-uri mode
// inlines files and shortens them again when the history comes back.
import t from 'tap'
import { folderId } from '../../src/files/names.js'
import { contentOf, pathAndQuery } from '../fixtures/gate.js'
import { IMAGE_NAME, IMAGE_PATH, PNG } from '../fixtures/hermes.js'
import { open, postJson, responseOf, send, writeUntilAnswered } from '../fixtures/http.js'
import { DONE, FINISH, ROLE, contentEvents } from '../fixtures/chat.js'
import { sse } from '../fixtures/mock-upstream.js'
import { startProxy } from '../fixtures/proxy.js'
import { DEFAULT_MAX_BODY_SIZE } from '../../src/routes/proxy.js'
import { parseMetrics, sampleValue } from '../fixtures/prometheus.js'
import { solidPng } from '../fixtures/png.js'
import { errorBody } from '../../src/errors.js'

/** Cuts a text into pieces of `size` characters, as a streaming model would. */
const pieces = (text: string, size: number): string[] => Array.from({ length: Math.ceil(text.length / size) }, (_, i) => text.slice(i * size, (i + 1) * size))

t.test('an inline upstream image streamed in pieces becomes a stored, served link', async (t) => {
  const { upstream, gate } = await startProxy(t)
  const picture = solidPng(300, 200)
  const base64 = picture.toString('base64')
  const text = `Chart:\n\n![chart](data:image/png;base64,${base64})\n\nDone.`
  upstream.handle(sse([ROLE, ...contentEvents(pieces(text, 97)), FINISH, DONE]))
  const res = await postJson(gate.url, '/v1/chat/completions', '{"stream": true}')
  const content = contentOf(res.text)
  const link = /!\[chart\]\((http[^)]+)\)/.exec(content)?.[1] ?? ''
  t.match(link, `/images/${folderId(gate.files.roots.at(-1) as string)}/`, 'under the store folder id')
  t.match(link, /\/images\/[0-9a-f]{10}\/[0-9a-f]{32}\.png\?sig=/, 'a signed link to a content-hash name')
  t.equal(content, `Chart:\n\n![chart](${link})\n\nDone.`, 'nothing else changed')
  t.notOk(res.text.includes(base64.slice(40, 80)), 'no base64 reaches the client')
  const image = await send(gate.url, { path: pathAndQuery(link) })
  t.equal(image.status, 200, 'served')
  t.equal(image.headers['content-type'], 'image/png', 'as a PNG')
  t.same(image.body, picture, 'byte for byte the decoded image')
})

t.test('inline images that are not stored pass through unchanged', async (t) => {
  const { upstream, gate } = await startProxy(t, { options: { dataImageMaxBytes: 50 } })
  const big = `![big](data:image/png;base64,${solidPng(64, 64).toString('base64')})`
  const lying = `![lie](data:image/png;base64,${Buffer.from('<html><script>alert(1)</script></html>').toString('base64')})`
  const text = `${big}\n${lying}`
  upstream.handle(sse([...contentEvents(pieces(text, 40)), FINISH, DONE]))
  const res = await postJson(gate.url, '/v1/chat/completions', '{"stream": true}')
  t.equal(contentOf(res.text), text, 'over the size cap, and a PNG that is not one: both left as they were')
})

t.test('data-uri mode inlines small files, and shortens them when the history comes back', async (t) => {
  const { upstream, gate } = await startProxy(t, { options: { mode: 'data-uri' } })
  upstream.handle(sse([...contentEvents(['Here: ', `MEDIA:${IMAGE_PATH}`, ' ok']), FINISH, DONE]))
  const first = await postJson(gate.url, '/v1/chat/completions', '{"stream": true}')
  const content = contentOf(first.text)
  const name = gate.nameOf(IMAGE_NAME)
  const inline = `data:image/png;imagegate=${name};sig=${gate.signer?.sign(name) ?? ''};base64,${PNG.toString('base64')}`
  t.equal(content, `Here: ![${IMAGE_NAME}](${inline}) ok`, 'the file is inlined, marked with its name and signature')

  upstream.handle((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('{"choices": []}') })
  const history = JSON.stringify({ stream: false, messages: [{ role: 'user', content: 'draw' }, { role: 'assistant', content }, { role: 'user', content: 'again' }] })
  await postJson(gate.url, '/v1/chat/completions', history)
  const seen = upstream.requests.at(-1)
  const expected = history.replace(inline, gate.link(IMAGE_NAME))
  t.equal(seen?.body.toString('utf8'), expected, 'the upstream gets the short link instead of the inline image')
  t.equal(seen?.headers['content-length'], String(Buffer.byteLength(expected)), 'with the right length')

  const plain = JSON.stringify({ messages: [{ role: 'user', content: 'no images here' }] })
  await postJson(gate.url, '/v1/chat/completions', plain)
  t.equal(upstream.requests.at(-1)?.body.toString('utf8'), plain, 'a history without inline images goes up unchanged')
})

t.test('data-uri mode refuses a history over the body limit, which it reads whole', async (t) => {
  const { upstream, gate } = await startProxy(t, { options: { mode: 'data-uri' } })
  // Chunked, so that only reading it finds the size.
  const { res, written } = await writeUntilAnswered(gate.url, '/v1/chat/completions', DEFAULT_MAX_BODY_SIZE)
  t.equal(res.status, 413, 'status 413')
  t.same(JSON.parse(res.text), errorBody('request_too_large', DEFAULT_MAX_BODY_SIZE), 'OpenAI-shaped body')
  t.ok(written > DEFAULT_MAX_BODY_SIZE, 'the answer came only once the limit was passed')
  t.equal(upstream.requests.length, 0, 'the upstream never saw it')
})

t.test('link mode leaves request bodies alone', async (t) => {
  const { upstream, gate } = await startProxy(t)
  upstream.handle((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('{"choices": []}') })
  const body = JSON.stringify({ messages: [{ role: 'assistant', content: `![x](data:image/png;imagegate=${IMAGE_NAME};sig=${gate.signer?.sign(IMAGE_NAME) ?? ''};base64,AAAA)` }] })
  await postJson(gate.url, '/v1/chat/completions', body)
  t.equal(upstream.requests.at(-1)?.body.toString('utf8'), body, 'forwarded as sent')
})

t.test('the store keeps under --store-max-bytes: the least recently used image goes, and its link answers 404', async (t) => {
  const first = solidPng(40, 40)
  const second = solidPng(41, 41)
  const third = solidPng(42, 42)
  // Room for two of them.
  const { upstream, gate } = await startProxy(t, { options: { storeMaxBytes: first.length + second.length + third.length - 1 } })
  const store = async (picture: Buffer): Promise<string> => {
    upstream.handle(sse([...contentEvents([`![p](data:image/png;base64,${picture.toString('base64')})`]), FINISH, DONE]))
    const content = contentOf((await postJson(gate.url, '/v1/chat/completions', '{"stream": true}')).text)
    return pathAndQuery(/!\[p\]\((http[^)]+)\)/.exec(content)?.[1] ?? '')
  }
  const one = await store(first)
  const two = await store(second)
  // Served, so used more recently than the second.
  t.equal((await send(gate.url, { path: one })).status, 200, 'the first image is served')
  const three = await store(third)
  const status = async (link: string): Promise<number> => (await send(gate.url, { path: link })).status
  t.equal(await status(two), 404, 'the least recently used (stored second, never served) is evicted')
  t.equal(await status(one), 200, 'the first, served since, stays')
  t.equal(await status(three), 200, 'the newest stays')
  const evicted = await send(gate.url, { path: two })
  t.equal(evicted.text, JSON.stringify(errorBody('not_found')), 'the fixed 404 body')
  const samples = parseMetrics((await send(gate.url, { path: '/metrics' })).text)
  t.equal(sampleValue(samples, 'imagegate_store_evictions_total'), 1, 'one eviction counted')
  t.equal(sampleValue(samples, 'imagegate_store_bytes'), first.length + third.length, 'the bytes left in the store')
})

t.test('an image evicted while it is being downloaded is sent whole; new requests get 404', async (t) => {
  // Past the in-memory file cache (2 MiB), so the file is streamed from disk.
  const large = (seed: number): Buffer => Buffer.concat([solidPng(2, 2), Buffer.alloc(4 * 1024 * 1024, seed)])
  const first = large(1)
  const second = large(2)
  const { upstream, gate } = await startProxy(t, { options: { storeMaxBytes: first.length + second.length - 1 } })
  const store = async (picture: Buffer): Promise<string> => {
    upstream.handle(sse([...contentEvents([`![p](data:image/png;base64,${picture.toString('base64')})`]), FINISH, DONE]))
    const content = contentOf((await postJson(gate.url, '/v1/chat/completions', '{"stream": true}')).text)
    return pathAndQuery(/!\[p\]\((http[^)]+)\)/.exec(content)?.[1] ?? '')
  }
  const one = await store(first)
  const req = open(gate.url, { path: one })
  req.end()
  const res = await responseOf(req)
  t.equal(res.statusCode, 200, 'the download starts')
  const chunks: Buffer[] = []
  // Read one piece, then stop reading: the server is still sending from the open file.
  await new Promise<void>((resolve) => res.once('data', (piece: Buffer) => { chunks.push(piece); res.pause(); resolve() }))
  await store(second)
  t.equal((await send(gate.url, { path: one })).status, 404, 'the evicted image is gone for new requests')
  res.resume()
  for await (const piece of res) chunks.push(piece as Buffer)
  t.equal(Buffer.concat(chunks).length, first.length, 'the running download gets every byte')
  t.ok(Buffer.concat(chunks).equals(first), 'exactly the evicted image')
})
