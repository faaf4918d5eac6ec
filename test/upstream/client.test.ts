import { errors as undiciErrors } from 'undici'
import fc from 'fast-check'
import t from 'tap'
import { ImagegateError, requestTooLarge } from '../../src/errors.js'
import {
  DEFAULT_BODY_TIMEOUT, DEFAULT_HEADERS_TIMEOUT, classifyUpstreamError, createUpstream
} from '../../src/upstream/client.js'

t.test('pathFor maps client URLs below the base path', async t => {
  // [base, client URL, upstream path]
  const cases: Array<[string, string, string]> = [
    ['http://h:1/v1', '/v1/chat/completions', '/v1/chat/completions'],
    ['http://h:1/v1', '/chat/completions', '/v1/chat/completions'],
    ['http://h:1/v1', '/v1/models', '/v1/models'],
    ['http://h:1/v1', '/models', '/v1/models'],
    ['http://h:1/v1', '/v1', '/v1'],
    ['http://h:1/v1', '/', '/v1/'],
    ['http://h:1/v1', '/v1/', '/v1/'],
    ['http://h:1/v1', '/v1/models/', '/v1/models/'],
    // Only a whole `v1` segment is the version.
    ['http://h:1/v1', '/v10/models', '/v1/v10/models'],
    ['http://h:1/v1', '/v1x', '/v1/v1x'],
    ['http://h:1/v1', '/V1/models', '/v1/V1/models'],
    ['http://h:1/v1', '/v1/v1/models', '/v1/v1/models'],
    // Doubled slashes, as a pasted base URL with a trailing slash produces.
    ['http://h:1/v1', '//v1//models', '/v1/models'],
    ['http://h:1/v1', '///chat///completions', '/v1/chat/completions'],
    ['http://h:1/v1', '/v1//chat/completions', '/v1/chat/completions'],
    // Query strings are kept as sent, slashes and all.
    ['http://h:1/v1', '/v1/models?limit=5', '/v1/models?limit=5'],
    ['http://h:1/v1', '/models?after=a%2Fb&x=//y', '/v1/models?after=a%2Fb&x=//y'],
    ['http://h:1/v1', '//v1//models?a=1?b=2', '/v1/models?a=1?b=2'],
    ['http://h:1/v1', '/v1/models?', '/v1/models?'],
    ['http://h:1/v1', '/v1/files/a%20b', '/v1/files/a%20b'],
    // A base with more path in front of the version.
    ['http://h/api/v1', '/v1/models', '/api/v1/models'],
    ['http://h/api/v1', '/models', '/api/v1/models'],
    ['http://h/api/v1', '//v1//chat/completions?x=1', '/api/v1/chat/completions?x=1'],
    ['http://h/api/v1/', '/v1/models', '/api/v1/models'],
    ['http://h/api/v1//', '/models', '/api/v1/models'],
    // Dot segments resolve before the base is prepended: a client stays below it.
    ['http://h/api/v1', '/v1/../admin', '/api/v1/admin'],
    ['http://h/api/v1', '/v1/../../../admin', '/api/v1/admin'],
    ['http://h/api/v1', '/v1/%2e%2e/%2E%2E/admin', '/api/v1/admin'],
    ['http://h/api/v1', '/v1/.%2e/admin', '/api/v1/admin'],
    ['http://h/api/v1', '/v1//..//admin', '/api/v1/admin'],
    ['http://h/api/v1', '/v1/./models', '/api/v1/models'],
    ['http://h/api/v1', '/v1/..\\..\\admin', '/api/v1/admin'],
    ['http://h/api/v1', '/v1/models/..?x=..', '/api/v1/?x=..'],
    // A backslash right after the first slash would start a host to the URL parser.
    ['http://h/api/v1', '/\\', '/api/v1/'],
    ['http://h/api/v1', '/\\?a=1', '/api/v1/?a=1'],
    ['http://h/api/v1', '/\\evil.example/v1/models', '/api/v1/evil.example/v1/models'],
    // Targets that are not origin-form stay paths on the configured upstream.
    ['http://h/api/v1', '*', '/api/v1/*'],
    ['http://h/api/v1', 'http://evil.example/v1/models', '/api/v1/http:/evil.example/v1/models']
  ]
  for (const [base, url, expected] of cases) {
    const upstream = createUpstream({ base: new URL(base) })
    t.teardown(() => upstream.close())
    t.equal(upstream.pathFor(url), expected, `${base} + ${url} → ${expected}`)
  }
})

t.test('pathFor never throws, and gives a plain path the same answer as the full parse', async t => {
  // The whole mapping as the URL parser does it, for every target.
  const parsed = (base: string, url: string): string => {
    const q = url.indexOf('?')
    const target = q === -1 ? url : url.slice(0, q)
    const path = new URL(('/' + target).replace(/\\/g, '/').replace(/\/{2,}/g, '/'), 'http://upstream.invalid').pathname.replace(/\/{2,}/g, '/')
    return base.replace(/\/+$/, '') + path.replace(/^\/v1(?=\/|$)/, '') + (q === -1 ? '' : url.slice(q))
  }
  const upstream = createUpstream({ base: new URL('http://h/api/v1') })
  t.teardown(() => upstream.close())
  const piece = fc.constantFrom('/', '//', 'v1', 'chat', 'completions', 'a_b-c', '.', '..', '%2e', '%2E%2e', '\\', '%', 'x.y', '?', '?a=/..', '~', ' ', 'é', '*', ':')
  fc.assert(fc.property(fc.array(piece, { maxLength: 8 }), (pieces) => {
    const url = pieces.join('')
    return upstream.pathFor(url) === parsed('/api/v1', url)
  }), { numRuns: 5000 })
  t.pass('5000 targets of plain and hostile pieces agree')
  t.equal(upstream.pathFor('/v1/chat/completions'), '/api/v1/chat/completions', 'the common path')
})

t.test('timeouts default to idle limits and can be set', async t => {
  const defaults = createUpstream({ base: new URL('http://h/v1') })
  t.teardown(() => defaults.close())
  t.equal(defaults.headersTimeout, DEFAULT_HEADERS_TIMEOUT, 'headers timeout default')
  t.equal(defaults.bodyTimeout, DEFAULT_BODY_TIMEOUT, 'body timeout default')
  t.ok(DEFAULT_HEADERS_TIMEOUT >= 60_000, 'an agent may think for minutes before its headers')

  const set = createUpstream({ base: new URL('http://h/v1'), headersTimeout: 5, bodyTimeout: 6, connectTimeout: 7 })
  t.teardown(() => set.close())
  t.equal(set.headersTimeout, 5, 'headers timeout is taken')
  t.equal(set.bodyTimeout, 6, 'body timeout is taken')
})

t.test('close resolves and the pool refuses new requests', async t => {
  const upstream = createUpstream({ base: new URL('http://127.0.0.1:9/v1') })
  await upstream.close()
  await t.rejects(upstream.dispatcher.request({ path: '/v1/models', method: 'GET' }), 'a closed pool sends nothing')
})

t.test('classifyUpstreamError maps failures before headers to 502 or 504', async t => {
  const ours = requestTooLarge(10)
  const cases: Array<[string, unknown, string, number]> = [
    ['headers timeout', new undiciErrors.HeadersTimeoutError(), 'upstream_timeout', 504],
    ['connect timeout', new undiciErrors.ConnectTimeoutError(), 'upstream_timeout', 504],
    ['connection refused', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }), 'upstream_unreachable', 502],
    ['socket closed', new undiciErrors.SocketError('other side closed'), 'upstream_unreachable', 502],
    ['not an error at all', 'boom', 'upstream_unreachable', 502]
  ]
  for (const [label, err, code, status] of cases) {
    const mapped = classifyUpstreamError(err)
    t.ok(mapped instanceof ImagegateError, `${label}: an ImagegateError`)
    t.equal(mapped.code, code, `${label}: code ${code}`)
    t.equal(mapped.statusCode, status, `${label}: status ${status}`)
    t.equal(mapped.type, 'upstream_error', `${label}: type upstream_error`)
    t.equal(mapped.cause, err, `${label}: keeps the cause`)
  }
  t.equal(classifyUpstreamError(ours), ours, 'an ImagegateError is kept as it is')
})
