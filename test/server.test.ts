import { once } from 'node:events'
import fs from 'node:fs'
import net from 'node:net'
import { Writable } from 'node:stream'
import t from 'tap'
import type { Test } from 'tap'
import { VERSION, buildServer, startServer } from '../src/server.js'
import { createSigner } from '../src/files/signing.js'
import type { Options } from '../src/config/options.js'
import { folderId } from '../src/files/names.js'
import { contentOf, startGate } from './fixtures/gate.js'
import { testOptions } from './fixtures/options.js'
import { IMAGE_NAME, IMAGE_PATH, PNG, cacheWithImage } from './fixtures/hermes.js'
import { send, waitFor } from './fixtures/http.js'
import { rawRequest } from './fixtures/raw-socket.js'
import { ERRORS, errorBody } from '../src/errors.js'
import { DONE, contentEvents } from './fixtures/chat.js'
import { sse, startMockUpstream } from './fixtures/mock-upstream.js'
import { startProxy } from './fixtures/proxy.js'

function options (t: Test, upstream: string, cache: string, extra: Partial<Options> = {}): Options {
  return testOptions(t, { upstream, cacheDirs: [cache], logLevel: 'info', ...extra })
}

function sink (): { stream: Writable, lines: () => Array<Record<string, unknown>>, raw: string[] } {
  const raw: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      raw.push(...chunk.toString('utf8').split('\n').filter((line) => line.length > 0))
      callback()
    }
  })
  return { stream, raw, lines: () => raw.map((line) => JSON.parse(line) as Record<string, unknown>) }
}

t.test('GET /healthz answers locally', async t => {
  const { upstream, gate } = await startProxy(t)

  const res = await send(gate.url, { path: '/healthz' })

  t.equal(res.status, 200, 'status 200')
  t.equal(res.headers['content-type'], 'application/json; charset=utf-8', 'JSON')
  t.same(JSON.parse(res.text), { status: 'ok', version: VERSION }, 'status ok and the version')
  const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  t.equal(VERSION, pkg.version, 'the version is the package\'s')
  t.equal(upstream.requests.length, 0, 'the upstream is not asked')
})

t.test('a URL the router cannot decode is an OpenAI-shaped 400, logged once', async t => {
  const { upstream, gate } = await startProxy(t)
  for (const path of ['/v1/%zz', '/v1/models%?key=hidden-query', '/images/%E0%A4%A']) {
    const res = await send(gate.url, { path })
    t.equal(res.status, 400, `${path}: 400`)
    t.equal(res.text, JSON.stringify(errorBody('malformed_url')), `${path}: the whole body`)
  }
  t.equal(upstream.requests.length, 0, 'nothing is forwarded')
  const lines = gate.logs.filter((line) => line.msg === 'request')
  t.equal(lines.length, 3, 'one request line each')
  t.match(lines[0], { method: 'GET', url: '/v1/%zz', statusCode: 400 }, 'with method, path and status')
  t.notOk(gate.rawLogs.join('\n').includes('hidden-query'), 'without the query string')
})

t.test('errors that are not imagegate\'s are OpenAI-shaped too, and a failure does not show its message', async t => {
  const { cache } = cacheWithImage(t)
  const upstream = await startMockUpstream()
  t.teardown(() => upstream.close())
  const logs = sink()
  const server = await buildServer(options(t, upstream.url, cache), { logStream: logs.stream })
  t.teardown(() => server.close())
  // Stand-ins for a failure nobody foresaw: a bare error, and one with a code but a status
  // that is no number.
  server.app.get('/fail/bare', async () => { throw new Error('cannot read /srv/secret/path') })
  server.app.get('/fail/coded', async () => { throw Object.assign(new Error('odd'), { code: 'E_ODD', statusCode: '418' }) })
  const url = await server.listen()

  const bare = await send(url, { path: '/fail/bare' })
  t.equal(bare.status, 500, 'bare: 500')
  t.equal(bare.text, JSON.stringify(errorBody('internal_error')), 'bare: the whole body, without the message')
  const coded = await send(url, { path: '/fail/coded' })
  t.equal(coded.status, 500, 'a status that is no number: 500')
  t.equal(coded.text, JSON.stringify(errorBody('internal_error')), 'the same body: the error\'s own code is not imagegate\'s')
  const failures = logs.lines().filter((line) => line.msg === 'request failed')
  t.same(failures.map((line) => [line.level, (line.err as { message: string }).message]), [[50, 'cannot read /srv/secret/path'], [50, 'odd']], 'each logged as an error, with the message')

  // A client mistake Fastify finds before any route runs.
  const media = await send(url, { method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'not a type' }, body: '{}' })
  t.equal(media.status, 415, 'an invalid content type: 415')
  t.equal(media.text, JSON.stringify(errorBody('unsupported_media_type')), 'imagegate\'s code and message for it, as a client error')
  t.equal(logs.lines().filter((line) => line.msg === 'request failed').length, 2, 'and not logged as a failure')
  t.equal(upstream.requests.length, 0, 'nothing is forwarded')
})

t.test('a method no route takes gets the fixed 404 body, never Fastify\'s, which echoes the URL', async t => {
  const upstream = await startMockUpstream()
  t.teardown(() => upstream.close())
  const gate = await startGate(t, { upstream: upstream.url })
  for (const method of ['PROPFIND', 'LOCK', 'PURGE']) {
    const res = await send(gate.url, { method, path: '/v1/models?key=hidden-query' })
    t.equal(res.status, 404, `${method}: 404`)
    t.equal(res.headers['cache-control'], 'no-store', `${method}: not cached`)
    t.equal(res.text, JSON.stringify(errorBody('not_found')), `${method}: the whole body`)
  }
  t.equal(upstream.requests.length, 0, 'nothing is forwarded')
})

t.test('a QUERY request without a Content-Type is refused with imagegate\'s body (RFC 10008)', async t => {
  const upstream = await startMockUpstream()
  t.teardown(() => upstream.close())
  const gate = await startGate(t, { upstream: upstream.url })
  const res = await send(gate.url, { method: 'QUERY', path: '/v1/models', body: 'q' })
  t.equal(res.status, 400, '400')
  t.equal(res.text, JSON.stringify(errorBody('missing_content_type')), 'the whole body')
  t.equal(upstream.requests.length, 0, 'nothing is forwarded')
})

t.test('a request the HTTP parser refuses gets imagegate\'s body, then the connection closes', async t => {
  const upstream = await startMockUpstream()
  t.teardown(() => upstream.close())
  const gate = await startGate(t, { upstream: upstream.url })
  const cases: Array<[string, Promise<Awaited<ReturnType<typeof rawRequest>>>, 'malformed_request' | 'request_header_too_large']> = [
    ['a request line that is not HTTP', rawRequest(gate.url, '/v1/models', { method: 'NOT A METHOD' }), 'malformed_request'],
    ['a head past the size limit', rawRequest(gate.url, '/v1/models', { headers: [`x-big: ${'a'.repeat(20_000)}`] }), 'request_header_too_large']
  ]
  for (const [label, answer, code] of cases) {
    const res = await answer
    const body = JSON.stringify(errorBody(code))
    t.equal(res.status, ERRORS[code].status, `${label}: ${ERRORS[code].status}`)
    t.match(res.head, /\r\ncontent-type: application\/json; charset=utf-8\r\n/i, `${label}: JSON`)
    t.match(res.head, new RegExp(`\\r\\ncontent-length: ${Buffer.byteLength(body)}\\r\\n`, 'i'), `${label}: its length`)
    t.equal(res.body.toString('utf8'), body, `${label}: the whole body`)
  }
  t.equal(upstream.requests.length, 0, 'nothing is forwarded')
})

t.test('a request head that does not arrive in time gets imagegate\'s 408 body; a socket already gone or closing gets nothing', async t => {
  const upstream = await startMockUpstream()
  t.teardown(() => upstream.close())
  const gate = await startGate(t, { upstream: upstream.url })
  // Node reports a slow head only after its headers timeout (a minute) on its own timer:
  // the error it would give is handed to the server's real socket here.
  const sockets: net.Socket[] = []
  gate.app.server.on('connection', (socket: net.Socket) => { sockets.push(socket) })
  const clientError = (code: string, prepare: (socket: net.Socket) => void = () => {}) => async (): Promise<string> => {
    const client = net.connect(Number(new URL(gate.url).port), '127.0.0.1')
    t.teardown(() => { client.destroy() })
    const chunks: Buffer[] = []
    client.on('data', (chunk: Buffer) => chunks.push(chunk))
    client.on('error', () => {})
    await once(client, 'connect')
    await waitFor(() => sockets.length > 0, 'the server side of the connection')
    const socket = sockets.shift() as net.Socket
    prepare(socket)
    gate.app.server.emit('clientError', Object.assign(new Error(code), { code }), socket)
    await once(client, 'close')
    return Buffer.concat(chunks).toString('utf8')
  }
  const timedOut = await clientError('ERR_HTTP_REQUEST_TIMEOUT')()
  t.match(timedOut, /^HTTP\/1\.1 408 Request Timeout\r\n/, '408')
  t.ok(timedOut.endsWith(`\r\n\r\n${JSON.stringify(errorBody('request_timeout'))}`), 'the whole body')
  t.equal(await clientError('ECONNRESET')(), '', 'a reset connection: nothing is written')
  t.equal(await clientError('HPE_INVALID_METHOD', (socket) => { socket.end() })(), '', 'a socket that no longer writes: nothing more is written')
})

t.test('startServer without warnings logs none', async t => {
  const { cache } = cacheWithImage(t)
  const logs = sink()
  const server = await startServer(options(t, 'http://127.0.0.1:9/v1', cache), { logStream: logs.stream })
  t.teardown(() => server.close())
  t.same(logs.lines().filter((line) => line.level === 40), [], 'no warning lines')
  t.ok(logs.lines().some((line) => line.msg === `imagegate listening on http://${server.address}; image links start with ${server.url}`), 'the start line')
})

t.test('startServer listens, says where, and closes', async t => {
  const { cache } = cacheWithImage(t)
  const upstream = await startMockUpstream(sse([...contentEvents([`MEDIA:${IMAGE_PATH} `]), DONE]))
  t.teardown(() => upstream.close())
  const logs = sink()
  const withCredentials = upstream.url.replace('http://', 'http://agent:pw-SECRET-7f@')

  const signingKey = 'server-test-signing-key-0123456789abcdef'
  const server = await startServer(options(t, withCredentials, cache, { signingKey }), { logStream: logs.stream, warnings: ['unknown environment variable IMAGEGATE_NOPE ignored'] })
  t.teardown(() => server.close())

  t.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/, 'resolves with the URL it listens on')
  const listening = logs.lines().find((line) => typeof line.msg === 'string' && line.msg.startsWith('imagegate listening on'))
  t.equal(server.address, server.url.replace('http://', ''), 'bound to the address asked for')
  t.match(listening, {
    level: 30,
    msg: `imagegate listening on http://${server.address}; image links start with ${server.url}`,
    url: server.url,
    address: server.address,
    publicUrl: server.url,
    upstream: upstream.url.replace('http://', 'http://***@'),
    cacheDirs: [cache]
  }, 'the start line names URL, public URL, upstream and cache dirs')
  t.match(logs.lines().find((line) => line.level === 40), { msg: 'unknown environment variable IMAGEGATE_NOPE ignored' }, 'warnings are logged as warnings')
  t.notOk(logs.raw.join('\n').includes('pw-SECRET-7f'), 'the upstream password is never logged')

  const res = await send(server.url, { method: 'POST', path: '/v1/chat/completions', body: '{}' })
  const name = `${folderId(cache)}/${IMAGE_NAME}`
  const sig = createSigner(signingKey).sign(name)
  t.equal(contentOf(res.text), `![${IMAGE_NAME}](${server.url}/images/${name}?sig=${sig}) `, 'links use the listening URL, signed with the configured key')

  await server.close()
  const refused = await send(server.url, { path: '/healthz' }).then(() => false, () => true)
  t.ok(refused, 'after close nothing listens')
})

t.test('a configured public URL is used in links', async t => {
  const { gate } = await startProxy(t, { options: { publicUrl: 'https://chat.example.org/imagegate' }, upstream: sse([...contentEvents([`![a](${IMAGE_PATH})`]), DONE]) })

  t.equal(gate.publicUrl, 'https://chat.example.org/imagegate', 'kept after listen')
  const res = await send(gate.url, { method: 'POST', path: '/v1/chat/completions', body: '{}' })
  t.equal(contentOf(res.text), `![a](${gate.link(IMAGE_NAME)})`, 'the link uses it')
  const name = gate.nameOf(IMAGE_NAME)
  t.match(gate.link(IMAGE_NAME), `https://chat.example.org/imagegate/images/${name}?sig=`, 'public URL, name, signature')
  const image = await send(gate.url, { path: `/images/${name}?sig=${gate.signer?.sign(name) ?? ''}` })
  t.same(image.body, PNG, 'the file is served at the path behind it')
})

t.test('buildServer does not listen; the public URL is known once it does', async t => {
  const { cache } = cacheWithImage(t)
  const settings = options(t, 'http://127.0.0.1:9/v1', cache, { logLevel: 'silent' })
  const server = await buildServer(settings)
  t.teardown(() => server.close())
  t.equal(server.publicUrl, '', 'no public URL before listening')
  t.equal(server.app.server.listening, false, 'not listening')
  t.same(server.files.roots, [cache, settings.storeDir], 'the resolver knows the cache dirs, then the store')
  const url = await server.listen()
  t.equal(server.publicUrl, url, 'the listening URL once listening')
})

t.test('the home folder setting is what ~/ stands for', async t => {
  // In a subfolder, so that only the expanded path can find it (a name alone is looked
  // up directly in a cache dir).
  const dir = t.testdir({ cache: { sub: { 'deep.png': PNG } } })
  const upstream = await startMockUpstream(sse([...contentEvents(['![a](~/cache/sub/deep.png)']), DONE]))
  t.teardown(() => upstream.close())
  const gate = await startGate(t, { upstream: upstream.url, cacheDirs: [`${dir}/cache`] }, { homedir: dir })
  const res = await send(gate.url, { method: 'POST', path: '/v1/chat/completions', body: '{}' })
  t.equal(contentOf(res.text), `![a](${gate.link('sub/deep.png')})`, 'the reference resolves below it')
})

t.test('the start line says the real bind address next to the public URL, once', async t => {
  const { cache } = cacheWithImage(t)
  const logs = sink()
  const server = await startServer(options(t, 'http://127.0.0.1:9/v1', cache, { host: '0.0.0.0' }), { logStream: logs.stream })
  t.teardown(() => server.close())
  const port = new URL(server.url).port
  t.equal(server.address, `0.0.0.0:${port}`, 'the bind address')
  t.equal(server.publicUrl, `http://localhost:${port}`, 'the public URL, for a browser on this machine')
  const lines = logs.lines()
  t.match(lines.filter((line) => /listening/i.test(String(line.msg))), [{
    level: 30,
    msg: `imagegate listening on http://0.0.0.0:${port}; image links start with http://localhost:${port}`,
    url: `http://localhost:${port}`,
    address: `0.0.0.0:${port}`,
    publicUrl: `http://localhost:${port}`
  }], 'one line, imagegate\'s own: Fastify\'s "Server listening at" lines (one per interface) are not written')
  t.same(lines.filter((line) => Number(line.level) >= 40), [], 'signed links: no warning on a wildcard address')
})

t.test('--no-signing on an address other machines reach is warned about; on loopback it is not', async t => {
  const { cache } = cacheWithImage(t)
  const open = sink()
  const wide = await startServer(options(t, 'http://127.0.0.1:9/v1', cache, { host: '0.0.0.0', noSigning: true }), { logStream: open.stream })
  t.teardown(() => wide.close())
  t.match(open.lines().filter((line) => line.level === 40), [{
    msg: `--no-signing on ${wide.address}: anyone who can reach this address can fetch every deliverable file by its name`,
    address: wide.address
  }], 'one warning naming the address')
  const local = sink()
  const narrow = await startServer(options(t, 'http://127.0.0.1:9/v1', cache, { noSigning: true }), { logStream: local.stream })
  t.teardown(() => narrow.close())
  t.same(local.lines().filter((line) => line.level === 40), [], 'none on 127.0.0.1')
})

t.test('a newly generated signing key is said at start; a kept one is not', async t => {
  const { dir, cache } = cacheWithImage(t)
  const stateDir = `${dir}/state`
  const first = sink()
  const server = await startServer(options(t, 'http://127.0.0.1:9/v1', cache, { stateDir }), { logStream: first.stream })
  await server.close()
  t.match(first.lines().filter((line) => String(line.msg).includes('signing key')), [{
    level: 30,
    msg: `generated a new signing key in ${stateDir}: image links made with an earlier key no longer work`,
    stateDir
  }], 'the first start says so, and what it means for old links')
  t.notOk(first.raw.join('\n').includes(fs.readFileSync(`${stateDir}/signing-key`, 'utf8').trim()), 'without the key')
  const again = sink()
  const restarted = await startServer(options(t, 'http://127.0.0.1:9/v1', cache, { stateDir }), { logStream: again.stream })
  t.teardown(() => restarted.close())
  t.same(again.lines().filter((line) => String(line.msg).includes('signing key')), [], 'a restart with the kept key says nothing')
  const configured = sink()
  const withKey = await startServer(options(t, 'http://127.0.0.1:9/v1', cache, { stateDir: `${dir}/other-state`, signingKey: '9b1e4f0a6c2d8e73b5a1c9f04d6e2a87' }), { logStream: configured.stream })
  t.teardown(() => withKey.close())
  t.same(configured.lines().filter((line) => String(line.msg).includes('signing key')), [], 'nor does a configured key')
})

t.test('a folder imagegate cannot write stops the start with a message naming the option', async t => {
  const { dir, cache } = cacheWithImage(t)
  // A path below a regular file fails for root too (ENOTDIR), as a folder of another
  // user fails for an unprivileged one (EACCES).
  fs.writeFileSync(`${dir}/plain-file`, 'x')
  const stateDir = `${dir}/plain-file/imagegate`
  await t.rejects(buildServer(options(t, 'http://127.0.0.1:9/v1', cache, { stateDir })), {
    message: `--state-dir: cannot keep the signing key in "${stateDir}" (ENOTDIR); give a folder this user may write with --state-dir, or a key of your own with --signing-key`
  }, 'the option, the folder, the cause and what to do')
  const storeDir = `${dir}/plain-file/store`
  await t.rejects(buildServer(options(t, 'http://127.0.0.1:9/v1', cache, { stateDir: `${dir}/state`, storeDir })), {
    message: `--store-dir: cannot keep the images sent as data: URLs in "${storeDir}" (ENOTDIR); give a folder this user may write with --store-dir (by default <state-dir>/store)`
  }, 'the store folder: its own option')
  fs.mkdirSync(`${dir}/taken`)
  fs.writeFileSync(`${dir}/taken/compact`, 'x')
  await t.rejects(buildServer(options(t, 'http://127.0.0.1:9/v1', cache, { stateDir: `${dir}/taken`, compactImages: 'webp' })), {
    message: `--state-dir: cannot keep compact images in "${dir}/taken/compact" (EEXIST); give a folder this user may write with --state-dir, or --compact-images off`
  }, 'the compact folder: the state folder, or no compacting')
  fs.writeFileSync(`${dir}/signing-key`, 'not a key\n')
  await t.rejects(buildServer(options(t, 'http://127.0.0.1:9/v1', cache, { stateDir: dir })), { message: /does not hold a signing key .* remove it to generate a new one/ }, 'a corrupt key file keeps its own message')
})
