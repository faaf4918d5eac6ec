import type { IncomingHttpHeaders } from 'node:http'
import t from 'tap'
import { clientResponseHeaders, upstreamRequestHeaders, viaIncludes, viaName } from '../../src/upstream/headers.js'

const plain = { apiKey: undefined, identity: false }

t.test('request headers: what never goes upstream', async t => {
  const cases: Array<[string, IncomingHttpHeaders, string[]]> = [
    ['hop-by-hop (RFC 9110 7.6.1)', {
      connection: 'keep-alive',
      'keep-alive': 'timeout=5',
      'proxy-authorization': 'Basic x',
      'proxy-connection': 'keep-alive',
      te: 'trailers',
      trailer: 'x-sum',
      'transfer-encoding': 'chunked',
      upgrade: 'h2c',
      'http2-settings': 'AAA'
    }, []],
    ['host is the upstream\'s own', { host: 'imagegate.local:8090' }, []],
    ['Origin, which hermes answers with 403', { origin: 'http://openwebui:3000' }, []],
    ['headers named in Connection', { connection: 'close, X-Private , x-other', 'x-private': '1', 'x-other': '2', 'x-kept': '3' }, ['x-kept']],
    ['Connection given as a list', { connection: ['x-a', 'x-b'] as unknown as string, 'x-a': '1', 'x-b': '2', 'x-kept': '3' }, ['x-kept']],
    ['empty Connection entries', { connection: ' , ,', 'x-kept': '1' }, ['x-kept']],
    ['end-to-end headers stay', {
      authorization: 'Bearer c',
      'content-type': 'application/json',
      'content-length': '12',
      accept: 'text/event-stream',
      'accept-encoding': 'gzip',
      cookie: 'a=1',
      'user-agent': 'OpenAI/Python 1.0',
      'x-openwebui-chat-id': 'c1'
    }, ['authorization', 'content-type', 'content-length', 'accept', 'accept-encoding', 'cookie', 'user-agent', 'x-openwebui-chat-id']]
  ]
  for (const [label, incoming, kept] of cases) {
    const out = upstreamRequestHeaders(incoming, plain)
    t.same(Object.keys(out).sort(), [...kept].sort(), `${label}: ${kept.length === 0 ? 'nothing' : kept.join(', ')} kept`)
    for (const name of kept) t.equal(out[name], incoming[name], `${label}: ${name} unchanged`)
  }
})

t.test('request headers: options', async t => {
  const incoming: IncomingHttpHeaders = { authorization: 'Bearer client', 'accept-encoding': 'gzip, br', 'set-cookie': ['a=1', 'b=2'] }
  t.same(upstreamRequestHeaders(incoming, plain), incoming, 'without options the headers pass as they are')
  t.same(upstreamRequestHeaders(incoming, { apiKey: 'sk-1', identity: false }), { ...incoming, authorization: 'Bearer sk-1' }, 'an API key replaces Authorization')
  t.same(upstreamRequestHeaders({}, { apiKey: 'sk-1', identity: false }), { authorization: 'Bearer sk-1' }, 'and is added when the client sent none')
  t.same(upstreamRequestHeaders(incoming, { apiKey: undefined, identity: true }), { ...incoming, 'accept-encoding': 'identity' }, 'identity asks for an uncompressed body')
  t.same(upstreamRequestHeaders({}, { apiKey: undefined, identity: true }), { 'accept-encoding': 'identity' }, 'also when the client asked for nothing')
  t.same(upstreamRequestHeaders({ 'x-a': undefined }, plain), {}, 'undefined values are skipped')
})

t.test('response headers: what never goes back to the client', async t => {
  const upstream = {
    'content-type': 'application/json',
    'content-length': '100',
    'content-encoding': 'identity',
    etag: '"v1"',
    'content-md5': 'abc',
    'x-request-id': 'r1',
    'set-cookie': ['a=1', 'b=2'],
    connection: 'keep-alive, x-hop',
    'keep-alive': 'timeout=5',
    'transfer-encoding': 'chunked',
    'x-hop': 'only this hop',
    'proxy-authenticate': 'Basic',
    trailer: 'x-sum',
    upgrade: 'h2c',
    'x-gone': undefined
  }
  const passed = clientResponseHeaders(upstream, false)
  t.same(passed, {
    'content-type': 'application/json',
    'content-length': '100',
    'content-encoding': 'identity',
    etag: '"v1"',
    'content-md5': 'abc',
    'x-request-id': 'r1',
    'set-cookie': ['a=1', 'b=2']
  }, 'passed through: end-to-end headers only, the body description kept')
  const rewritten = clientResponseHeaders(upstream, true)
  t.same(rewritten, {
    'content-type': 'application/json',
    'x-request-id': 'r1',
    'set-cookie': ['a=1', 'b=2']
  }, 'rewritten: length, encoding and validators of the old body are dropped')
})

t.test('Via: this proxy\'s entry is added after the client\'s, and found again in a loop', async t => {
  const name = viaName('0a1b2c3d4e5f')
  t.equal(name, 'imagegate-0a1b2c3d4e5f', 'the name carries the id only')
  t.same(upstreamRequestHeaders({}, { ...plain, via: `1.1 ${name}` }).via, `1.1 ${name}`, 'alone')
  t.same(upstreamRequestHeaders({ via: '1.0 fred, 1.1 p.example.net' }, { ...plain, via: `1.1 ${name}` }).via, `1.0 fred, 1.1 p.example.net, 1.1 ${name}`, 'after the client\'s (RFC 9110 7.6.3)')
  t.equal(upstreamRequestHeaders({ via: '1.0 fred' }, plain).via, '1.0 fred', 'without an entry of its own: the client\'s unchanged')
  const cases: Array<[string | string[] | undefined, boolean, string]> = [
    [undefined, false, 'no Via'],
    ['1.1 edge', false, 'another proxy'],
    [`1.1 ${name}`, true, 'this proxy'],
    [`1.0 fred,1.1 ${name} (imagegate) , 1.1 edge`, true, 'among others, with a comment and odd spacing'],
    [['1.1 edge', `HTTP/1.1 ${name}`], true, 'in a second header line'],
    [`1.1 ${name}x`, false, 'a longer name'],
    [`1.1 x${name}`, false, 'a name ending in it'],
    [name, false, 'a name without its protocol is no entry']
  ]
  for (const [via, expected, label] of cases) t.equal(viaIncludes(via, name), expected, label)
})
