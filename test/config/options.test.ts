import t from 'tap'
import { OPTIONS, type Key } from '../../src/config/option-table.js'
import {
  DEFAULT_UPSTREAM, expectString, invalid, parseApiKey, parseBoolean, parseBytes, parseHost,
  parseSeconds, parseSigningKey,
  parsePublicUrl, parseUpstream, show, typeName, type Raw
} from '../../src/config/options.js'
import { ConfigError } from '../../src/errors.js'

// The rule an option's row declares (port, log level, mode, compact settings), as every source goes through it.
const parseOption = (key: Key, raw: Raw): unknown => OPTIONS[key].kind.parse(raw, { cwd: '/', homedir: '/root' })
const parsePort = (raw: Raw): unknown => parseOption('port', raw)
const parseLogLevel = (raw: Raw): unknown => parseOption('log-level', raw)
const parseMode = (raw: Raw): unknown => parseOption('mode', raw)
const parseCompactImages = (raw: Raw): unknown => parseOption('compact-images', raw)
const parseQuality = (raw: Raw): unknown => parseOption('compact-quality', raw)
const parseWidth = (raw: Raw): unknown => parseOption('compact-max-width', raw)
const flag = (where: string, value: unknown): Raw => ({ value, origin: { where } })
const fromFile = (key: string, value: unknown, line: number): Raw => ({ value, origin: { where: `config.yaml: ${key}`, line } })

t.test('upstream is normalized to end in /v1 without a trailing slash', async t => {
  const cases: Array<[string, string]> = [
    ['http://h:1', 'http://h:1/v1'],
    ['http://h:1/', 'http://h:1/v1'],
    ['http://h:1/v1', 'http://h:1/v1'],
    ['http://h:1/v1/', 'http://h:1/v1'],
    ['http://h:1/v1//', 'http://h:1/v1'],
    ['http://h/api', 'http://h/api/v1'],
    ['http://h/api/', 'http://h/api/v1'],
    ['https://h/api/v1', 'https://h/api/v1'],
    ['HTTP://H:1', 'http://h:1/v1'],
    ['http://user:pw@h:1', 'http://user:pw@h:1/v1'],
    [DEFAULT_UPSTREAM, DEFAULT_UPSTREAM]
  ]
  for (const [input, expected] of cases) {
    const url = parseUpstream(flag('--upstream', input))
    t.equal(url.href, expected, `${input} → ${expected}`)
  }
})

t.test('public-url is kept without a trailing slash', async t => {
  const cases: Array<[string, string]> = [
    ['http://h:1', 'http://h:1'],
    ['http://h:1/', 'http://h:1'],
    ['https://chat.example.org/imagegate/', 'https://chat.example.org/imagegate'],
    ['https://chat.example.org:443/a/b', 'https://chat.example.org/a/b']
  ]
  for (const [input, expected] of cases) {
    t.equal(parsePublicUrl(flag('--public-url', input)), expected, `${input} → ${expected}`)
  }
})

t.test('each bad value has its own one-line message naming key and value', async t => {
  const cases: Array<[string, () => unknown, string]> = [
    ['not a URL', () => parseUpstream(flag('--upstream', 'localhost:8642')),
      '--upstream: must be an absolute http or https URL, got "localhost:8642"'],
    ['unparsable URL', () => parseUpstream(flag('--upstream', 'http://')),
      '--upstream: must be an absolute http or https URL, got "http://"'],
    ['ftp URL', () => parseUpstream(flag('IMAGEGATE_UPSTREAM', 'ftp://h/v1')),
      'IMAGEGATE_UPSTREAM: must be an absolute http or https URL, got "ftp://h/v1"'],
    ['query', () => parseUpstream(flag('--upstream', 'http://h/v1?x=1')),
      '--upstream: must not have a query or fragment, got "http://h/v1?x=1"'],
    ['empty query', () => parseUpstream(flag('--upstream', 'http://h/v1?')),
      '--upstream: must not have a query or fragment, got "http://h/v1?"'],
    ['fragment', () => parsePublicUrl(flag('--public-url', 'http://h/#top')),
      '--public-url: must not have a query or fragment, got "http://h/#top"'],
    ['userinfo in public-url', () => parsePublicUrl(flag('--public-url', 'http://me:hunter2@h')),
      '--public-url: must not contain a user name or password, got "http://***@h/"'],
    ['wrong YAML type for a URL', () => parseUpstream(fromFile('upstream', 8642, 2)),
      'config.yaml: upstream: must be a string, got a number (line 2)'],
    ['port too large', () => parsePort(flag('--port', '70000')),
      '--port: must be an integer from 0 to 65535, got "70000"'],
    ['negative port', () => parsePort(flag('--port', '-1')),
      '--port: must be an integer from 0 to 65535, got "-1"'],
    ['port not a number', () => parsePort(flag('--port', 'abc')),
      '--port: must be an integer from 0 to 65535, got "abc"'],
    ['fractional port', () => parsePort(flag('--port', '80.5')),
      '--port: must be an integer from 0 to 65535, got "80.5"'],
    ['YAML port too large', () => parsePort(fromFile('port', 70000, 3)),
      'config.yaml: port: must be an integer from 0 to 65535, got 70000 (line 3)'],
    ['YAML port as a list', () => parsePort(fromFile('port', [1], 3)),
      'config.yaml: port: must be an integer from 0 to 65535, got a list (line 3)'],
    ['host with a scheme', () => parseHost(flag('--host', 'http://h')),
      '--host: must be a host name or IP address (IPv6 without brackets), got "http://h"'],
    ['host in brackets', () => parseHost(flag('--host', '[::1]')),
      '--host: must be a host name or IP address (IPv6 without brackets), got "[::1]"'],
    ['YAML host as a mapping', () => parseHost(fromFile('host', { a: 1 }, 4)),
      'config.yaml: host: must be a string, got a mapping (line 4)'],
    ['bad log level', () => parseLogLevel(flag('--log-level', 'loud')),
      '--log-level: must be one of fatal, error, warn, info, debug, trace, silent, got "loud"'],
    ['YAML log level as a boolean', () => parseLogLevel(fromFile('log-level', true, 5)),
      'config.yaml: log-level: must be a string, got a boolean (line 5)'],
    ['API key with a space', () => parseApiKey(flag('--upstream-api-key', 'hunter2 x')),
      '--upstream-api-key: must be non-empty printable text without spaces'],
    ['API key with a line break', () => parseApiKey(flag('IMAGEGATE_UPSTREAM_API_KEY', 'hunter2\r\nX: y')),
      'IMAGEGATE_UPSTREAM_API_KEY: must be non-empty printable text without spaces'],
    ['YAML API key as a number', () => parseApiKey(fromFile('upstream-api-key', 12345, 6)),
      'config.yaml: upstream-api-key: must be a string, got a number (line 6)']
  ]
  for (const [name, run, message] of cases) {
    t.throws(run, new ConfigError(message), name)
  }
})

t.test('secrets stay out of messages', async t => {
  const secret = 'hunter2'
  const runs: Array<() => unknown> = [
    () => parseUpstream(flag('--upstream', `http://user:${secret}@h/v1?x`)),
    () => parseUpstream(flag('--upstream', `ftp://user:${secret}@h/v1`)),
    () => parseUpstream(flag('--upstream', `http://user:${secret}@`)),
    () => parsePublicUrl(flag('--public-url', `http://user:${secret}@h`)),
    () => parseApiKey(flag('--upstream-api-key', `${secret} `)),
    () => parseApiKey(flag('--upstream-api-key', ''))
  ]
  for (const run of runs) {
    const err = t.throws(run) as Error
    t.notMatch(err.message, secret, `"${err.message}" does not show the secret`)
  }
})

t.test('valid values pass through', async t => {
  t.equal(parsePort(flag('--port', '0')), 0, 'port 0 lets the system choose')
  t.equal(parsePort(flag('--port', '65535')), 65535, 'highest port')
  t.equal(parsePort(fromFile('port', 8091, 1)), 8091, 'YAML number')
  t.equal(parseHost(flag('--host', '::')), '::', 'IPv6 wildcard')
  t.equal(parseHost(flag('--host', 'my-host.local')), 'my-host.local', 'host name')
  t.equal(parseLogLevel(flag('IMAGEGATE_LOG_LEVEL', 'DEBUG')), 'debug', 'log level in capitals')
  t.equal(parseApiKey(flag('--upstream-api-key', 'sk-abc_123')), 'sk-abc_123', 'API key')
  t.equal(expectString(flag('--host', 'x')), 'x', 'string')
})

t.test('show and typeName describe values for messages', async t => {
  t.equal(show('a"b'), '"a\\"b"', 'text is quoted')
  t.equal(show(5), '5', 'numbers as they are')
  t.equal(show(false), 'false', 'booleans as they are')
  t.equal(show(null), 'null', 'null')
  t.equal(show([]), 'a list', 'lists by type')
  t.equal(typeName({}), 'a mapping', 'mappings by type')
  t.equal(typeName('x'), 'a string', 'strings by type')
  t.equal(invalid({ where: '--x' }, 'must be y', '"z"').message, '--x: must be y, got "z"', 'invalid() format')
})

t.test('booleans, durations, sizes, modes and the signing key', async t => {
  const raw = (value: unknown, where = '--x') => ({ value, origin: { where } })
  for (const [value, expected] of [[true, true], [false, false], ['TRUE', true], ['1', true], ['yes', true], ['off', false], ['0', false]] as const) {
    t.equal(parseBoolean(raw(value)), expected, `boolean ${JSON.stringify(value)}`)
  }
  t.throws(() => parseBoolean(raw('maybe', 'IMAGEGATE_ALLOW_SVG')), { message: 'IMAGEGATE_ALLOW_SVG: must be true or false, got "maybe"' }, 'bad boolean')
  t.equal(parseSeconds(raw('2.5')), 2.5, 'fractional seconds')
  t.equal(parseSeconds(raw(0)), 0, 'zero seconds from YAML')
  t.throws(() => parseSeconds(raw('-1', '--keepalive')), { message: '--keepalive: must be a number of seconds from 0 to 86400, got "-1"' }, 'negative seconds')
  t.throws(() => parseSeconds(raw(100000, '--keepalive')), { message: '--keepalive: must be a number of seconds from 0 to 86400, got 100000' }, 'more than a day')
  t.equal(parseBytes(raw('98304')), 98304, 'bytes')
  t.throws(() => parseBytes(raw('1.5', '--inline-max-bytes')), { message: '--inline-max-bytes: must be a whole number of bytes, got "1.5"' }, 'fractional bytes')
  t.equal(parseMode(raw('DATA-URI')), 'data-uri', 'mode, any case')
  t.throws(() => parseMode(raw('inline', '--mode')), { message: '--mode: must be one of link, data-uri, got "inline"' }, 'bad mode')
  t.equal(parseCompactImages(raw('AVIF')), 'avif', 'compact images, any case')
  t.throws(() => parseCompactImages(raw('jpeg', '--compact-images')), { message: '--compact-images: must be one of webp, avif, off, got "jpeg"' }, 'bad compact format')
  t.equal(parseQuality(raw('80')), 80, 'quality from text')
  t.equal(parseQuality(raw(100)), 100, 'quality from YAML')
  t.throws(() => parseQuality(raw('0', '--compact-quality')), { message: '--compact-quality: must be an integer from 1 to 100, got "0"' }, 'quality below 1')
  t.throws(() => parseQuality(raw(80.5, '--compact-quality')), { message: '--compact-quality: must be an integer from 1 to 100, got 80.5' }, 'fractional quality')
  t.equal(parseWidth(raw('0')), 0, 'width 0: no limit')
  t.throws(() => parseWidth(raw('16384', '--compact-max-width')), { message: '--compact-max-width: must be an integer from 0 to 16383, got "16384"' }, 'wider than WebP allows')
  t.throws(() => parseWidth(raw(true, 'compact-max-width')), { message: 'compact-max-width: must be an integer from 0 to 16383, got true' }, 'a boolean width')
  const key = '5f0c9a7e1d3b8264f0a9c7e5b3d1f8a2'
  t.equal(parseSigningKey(raw(key)), key, 'a 32-character random key')
  t.throws(() => parseSigningKey(raw('short-secret', '--signing-key')), { message: '--signing-key: must be at least 32 characters (e.g. openssl rand -hex 32)' }, 'short key refused without echoing it')
  t.throws(() => parseSigningKey(raw('has space has space has space has space', '--signing-key')), { message: '--signing-key: must be non-empty printable text without spaces' }, 'key with spaces refused without echoing it')
})

t.test('upstream URLs that end in an endpoint are refused with the base URL to write instead', async t => {
  const cases: Array<[string, string, string]> = [
    ['http://host:8642/v1/chat/completions', '/chat/completions', 'http://host:8642/v1'],
    ['http://host:8642/v1/chat/completions/', '/chat/completions', 'http://host:8642/v1'],
    ['http://host:8642/chat/completions', '/chat/completions', 'http://host:8642/v1'],
    ['https://h/api/v1/responses', '/responses', 'https://h/api/v1'],
    ['http://h:1/v1/models', '/models', 'http://h:1/v1'],
    ['http://h:1/v1/completions', '/completions', 'http://h:1/v1'],
    ['http://h:1/v1/embeddings', '/embeddings', 'http://h:1/v1'],
    ['http://h:1/v1/Chat/Completions', '/chat/completions', 'http://h:1/v1'],
    ['http://agent:pw-SECRET@h:1/v1/models', '/models', 'http://***@h:1/v1']
  ]
  for (const [input, endpoint, base] of cases) {
    t.throws(() => parseUpstream(flag('--upstream', input)), {
      message: `--upstream: ends in the endpoint "${endpoint}"; give the base URL, e.g. "${base}"`
    }, `${input}: names the endpoint and the base URL`)
  }
  t.throws(() => parseUpstream(fromFile('upstream', 'http://h:1/v1/models', 3)), {
    message: 'config.yaml: upstream: ends in the endpoint "/models"; give the base URL, e.g. "http://h:1/v1" (line 3)'
  }, 'from a file: with the line')
  for (const fine of ['http://h:1/models-gateway', 'http://h:1/v1/chat', 'http://h:1/responses-api/v1']) {
    t.equal(parseUpstream(flag('--upstream', fine)).pathname.endsWith('/v1'), true, `${fine}: no endpoint, accepted`)
  }
})

t.test('the example signing key and obviously weak keys are refused, naming the rule', async t => {
  const raw = (value: string): Raw => flag('--signing-key', value)
  const cases: Array<[string, string, string]> = [
    ['change-me-to-32-or-more-random-characters', 'must be a secret of your own, not the placeholder from config.example.yaml', 'config.example.yaml\'s key'],
    ['CHANGE-ME-to-something-random-enough-9f2k', 'must be a secret of your own, not the placeholder from config.example.yaml', 'any key starting change-me'],
    ['changeme0a8f7d6e5c4b3a2918273645', 'must be a secret of your own, not the placeholder from config.example.yaml', 'changeme without the dash'],
    ['k'.repeat(32), 'must use at least 8 different characters, got 1', 'one character repeated'],
    ['abababababababababababababababab', 'must use at least 8 different characters, got 2', 'two characters'],
    ['Secr3t-12Secr3t-12Secr3t-12Secr3t-12', 'must not be a shorter text repeated', 'a pattern repeated'],
    ['abcdefghijklmnopqrstuvwxyz012345', 'must not be mostly runs such as "aaaa", "abcd" or "4321"', 'the alphabet'],
    ['98765432109876543210zyxwvutsrqpo', 'must not be mostly runs such as "aaaa", "abcd" or "4321"', 'counting down']
  ]
  for (const [key, rule, label] of cases) {
    t.throws(() => parseSigningKey(raw(key)), { message: `--signing-key: ${rule} (e.g. openssl rand -hex 32)` }, `${label}: refused`)
    let message = ''
    try { parseSigningKey(raw(key)) } catch (err) { message = (err as Error).message }
    t.notOk(message.includes(key), `${label}: the key is not shown`)
  }
  const generated = ['9b1e4f0a6c2d8e73b5a1c9f04d6e2a87', 'V3q_x9Lr-2Tn8Kp5Zw1Hc7Yb4Md6Fs0Gj', 'correct-horse-battery-staple-on-the-moon']
  for (const key of generated) t.equal(parseSigningKey(raw(key)), key, `${key.slice(0, 6)}…: a key of your own is accepted`)
})
