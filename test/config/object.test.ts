import { join } from 'node:path'
import t from 'tap'
import { resolveImagegateOptions, type ImagegateOptions } from '../../src/config/object.js'
import { ConfigError } from '../../src/errors.js'

t.test('a plain object becomes complete options, with the same defaults as the command line', async t => {
  const dir = t.testdir({ images: {}, home: {} })
  const { options, warnings } = resolveImagegateOptions({
    upstream: new URL('http://127.0.0.1:8642'),
    cacheDirs: 'images',
    port: 0,
    logLevel: 'warn',
    signingKey: undefined,
    noSigning: true,
    stateDir: '~/state'
  }, { cwd: dir, homedir: join(dir, 'home'), env: {} })
  t.equal(options.upstream.href, 'http://127.0.0.1:8642/v1', 'a URL object is taken, /v1 added')
  t.same(options.cacheDirs, [join(dir, 'images')], 'one folder, relative to cwd')
  t.equal(options.port, 0, 'port 0')
  t.equal(options.host, '127.0.0.1', 'default host')
  t.equal(options.logLevel, 'warn', 'log level')
  t.equal(options.signingKey, undefined, 'undefined is the same as left out')
  t.equal(options.noSigning, true, 'booleans')
  t.equal(options.stateDir, join(dir, 'home', 'state'), '~ is the home folder given')
  t.equal(options.storeDir, join(dir, 'home', 'state', 'store'), 'store folder under it')
  t.same(warnings, [], 'no warning with folders given')
})

t.test('compact images and named events, as on the command line', async t => {
  const dir = t.testdir({ images: {}, home: {} })
  const context = { cwd: dir, homedir: join(dir, 'home'), env: {} }
  const { options } = resolveImagegateOptions({ cacheDirs: 'images', compactImages: 'avif', compactQuality: 60, compactMaxWidth: 0, compactMaxBytes: 1024, dropNamedEvents: true }, context)
  t.same([options.compactImages, options.compactQuality, options.compactMaxWidth, options.compactMaxBytes, options.dropNamedEvents], ['avif', 60, 0, 1024, true], 'taken')
  const defaults = resolveImagegateOptions({ cacheDirs: 'images' }, context).options
  t.same([defaults.compactImages, defaults.compactQuality, defaults.compactMaxWidth, defaults.dropNamedEvents], ['webp', 80, 2048, false], 'the command line\'s defaults')
  t.throws(() => resolveImagegateOptions({ cacheDirs: 'images', compactQuality: 0 }, context), new ConfigError('options.compactQuality: must be an integer from 1 to 100, got 0'), 'checked the same way')
})

t.test('without cache folders, hermes\' are looked for, with the same warning', async t => {
  const dir = t.testdir({ home: {} })
  const { options, warnings } = resolveImagegateOptions({}, { cwd: dir, homedir: join(dir, 'home'), env: { IMAGEGATE_PORT: '1' } })
  t.same(options.cacheDirs, [], 'none found')
  t.equal(options.port, 8090, 'IMAGEGATE_* variables are not read: the program decides')
  t.match(warnings, [/^no cache folder found in /], 'the warning the command line gives')
})

t.test('defaults come from the process when no context is given', async t => {
  const { options } = resolveImagegateOptions({ cacheDirs: [process.cwd()], port: 0 })
  t.same(options.cacheDirs, [process.cwd()], 'resolved from the process\'s folder')
})

t.test('mistakes are ConfigErrors naming options.<key>', async t => {
  const dir = t.testdir({ home: {} })
  const context = { cwd: dir, homedir: join(dir, 'home'), env: {}, localAddresses: [] }
  const cases: Array<[string, unknown, string]> = [
    ['not an object', 'http://h', 'options: must be an object such as { upstream: "http://127.0.0.1:8642/v1" }'],
    ['null', null, 'options: must be an object such as { upstream: "http://127.0.0.1:8642/v1" }'],
    ['a list', [], 'options: must be an object such as { upstream: "http://127.0.0.1:8642/v1" }'],
    ['unknown key', { prot: 1 }, 'options: unknown key "prot"'],
    ['YAML spelling', { 'cache-dir': 'x' }, 'options: unknown key "cache-dir"'],
    ['bad port', { port: 70000 }, 'options.port: must be an integer from 0 to 65535, got 70000'],
    ['bad type', { host: 5 }, 'options.host: must be a string, got a number'],
    ['missing folder', { cacheDirs: ['nope'] }, `options.cacheDirs: "nope" (${join(dir, 'nope')}) does not exist`],
    ['pasted endpoint', { upstream: 'http://h:8642/v1/chat/completions' }, 'options.upstream: ends in the endpoint "/chat/completions"; give the base URL, e.g. "http://h:8642/v1"'],
    ['example key', { signingKey: 'change-me-to-32-or-more-random-characters' }, 'options.signingKey: must be a secret of your own, not the placeholder from config.example.yaml (e.g. openssl rand -hex 32)'],
    ['own address', { upstream: 'http://localhost:9000', port: 9000 }, 'options.upstream: "http://localhost:9000/v1" is imagegate\'s own address (it listens on 127.0.0.1:9000), so every request would be forwarded to itself; give the agent backend\'s URL, e.g. "http://127.0.0.1:8642/v1"']
  ]
  for (const [name, given, message] of cases) {
    t.throws(() => resolveImagegateOptions(given as ImagegateOptions, context), new ConfigError(message), name)
  }
})
