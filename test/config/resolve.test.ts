import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { DEFAULT_HOST, DEFAULT_LOG_LEVEL, DEFAULT_PORT, DEFAULT_UPSTREAM, type Options } from '../../src/config/options.js'
import { loadConfigFile } from '../../src/config/config-file.js'
import { resolveOptions, resolveSources, type ResolveInput } from '../../src/config/resolve.js'
import { envName, KEYS, readEnv, readFlags, type Key } from '../../src/config/sources.js'
import { ConfigError } from '../../src/errors.js'

const ROOT = new URL('../../', import.meta.url).pathname

// A run with nothing given, in a home folder without hermes, unless overridden.
const input = (t: Test, over: Partial<ResolveInput> = {}): ResolveInput => {
  const dir = t.testdir({ home: {} })
  return { argv: [], env: {}, cwd: dir, homedir: join(dir, 'home'), ...over }
}

const run = (given: ResolveInput): { options: Options, warnings: string[] } => {
  const resolved = resolveOptions(given)
  if (resolved.kind !== 'run') throw new Error(`expected a run, got ${resolved.kind}`)
  return resolved
}

t.test('nothing given: defaults, and a warning that there is no cache folder', async t => {
  const given = input(t)
  const { options, warnings } = run(given)
  t.same(options, {
    upstream: new URL(DEFAULT_UPSTREAM),
    cacheDirs: [],
    port: DEFAULT_PORT,
    host: DEFAULT_HOST,
    publicUrl: undefined,
    upstreamApiKey: undefined,
    logLevel: DEFAULT_LOG_LEVEL,
    signingKey: undefined,
    noSigning: false,
    stateDir: join(given.homedir, '.local/state/imagegate'),
    allowSvg: false,
    shutdownGrace: 8,
    keepalive: 15,
    mode: 'link',
    inlineMaxBytes: 98304,
    storeDir: join(given.homedir, '.local/state/imagegate/store'),
    dataImageMaxBytes: 20971520,
    storeMaxBytes: 536870912,
    compactImages: 'webp',
    compactQuality: 80,
    compactMaxWidth: 2048,
    compactMaxBytes: 268435456,
    dropNamedEvents: false,
    hermesHome: join(given.homedir, '.hermes')
  }, 'defaults')
  t.equal(run({ ...given, env: { XDG_STATE_HOME: '/var/state' } }).options.stateDir, '/var/state/imagegate', 'XDG_STATE_HOME is honoured')
  t.equal(run({ ...given, env: { XDG_STATE_HOME: 'relative' } }).options.stateDir, join(given.homedir, '.local/state/imagegate'), 'a relative XDG_STATE_HOME is ignored, as the XDG spec says')
  t.equal(options.upstream.href, 'http://127.0.0.1:8642/v1', 'default upstream')
  t.equal(warnings.length, 1, 'one warning')
  t.match(warnings[0], `no cache folder found in ${join(given.homedir, '.hermes')}`, 'names the folder looked in')
})

t.test('hermes cache folders are found under HERMES_HOME', async t => {
  const dir = t.testdir({
    hermes: {
      cache: { images: {} },
      profiles: { work: { cache: { screenshots: {} } } }
    }
  })
  const hermes = join(dir, 'hermes')
  const { options, warnings } = run({ argv: [], env: { HERMES_HOME: hermes }, cwd: dir, homedir: '/nowhere' })
  t.same(options.cacheDirs, [join(hermes, 'cache', 'images'), join(hermes, 'profiles', 'work', 'cache', 'screenshots')],
    'images and the profile\'s screenshots; audio is missing and left out')
  t.same(warnings, [], 'no warning')
  t.equal(options.hermesHome, hermes, 'the folder to search again for folders created later')
  const named = run({ argv: ['--cache-dir', hermes], env: { HERMES_HOME: hermes }, cwd: dir, homedir: '/nowhere' })
  t.equal(named.options.hermesHome, undefined, 'folders named explicitly are not searched again')
})

t.test('help and version need nothing else to be right', async t => {
  const broken = input(t, { env: { IMAGEGATE_CONFIG: 'missing.yaml', IMAGEGATE_PORT: 'x' } })
  t.match(resolveOptions({ ...broken, argv: ['--help'] }), { kind: 'help', text: /^Usage: imagegate/ }, '--help')
  t.match(resolveOptions({ ...broken, argv: ['-h', '--port', '1'] }), { kind: 'help' }, '-h with other flags')
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version
  t.same(resolveOptions({ ...broken, argv: ['--version'] }), { kind: 'version', text: `imagegate ${version}` }, '--version')
})

t.test('each mistake gets one line that names the key and the value', async t => {
  const dir = t.testdir({
    'a-file': 'x',
    'portt.yaml': 'port: 8091\nhost: localhost\nportt: 8092\n',
    'type.yaml': '# comment\nport: [8091]\n',
    'host.yaml': 'host: 5\n',
    'syntax.yaml': 'port: 8091\nhost: "localhost\n',
    'empty-state.yaml': 'state-dir: ""\n',
    'empty-store.yaml': '# comment\nstore-dir: \'\'\n',
    home: {}
  })
  const cases: Array<[string, Partial<ResolveInput>, string]> = [
    ['unknown flag', { argv: ['--portt', '1'] }, 'unknown flag "--portt" (see --help)'],
    ['bad URL', { argv: ['--upstream', 'localhost:8642'] }, '--upstream: must be an absolute http or https URL, got "localhost:8642"'],
    ['ftp URL', { env: { IMAGEGATE_UPSTREAM: 'ftp://h/v1' } }, 'IMAGEGATE_UPSTREAM: must be an absolute http or https URL, got "ftp://h/v1"'],
    ['missing cache dir', { argv: ['--cache-dir', 'nope'] }, `--cache-dir: "nope" (${join(dir, 'nope')}) does not exist`],
    ['cache dir is a file', { argv: ['--cache-dir', join(dir, 'a-file')] }, `--cache-dir: ${JSON.stringify(join(dir, 'a-file'))} is not a directory`],
    ['port too large', { argv: ['--port', '70000'] }, '--port: must be an integer from 0 to 65535, got "70000"'],
    ['negative port', { argv: ['--port', '-1'] }, '--port: must be an integer from 0 to 65535, got "-1"'],
    ['port not a number', { env: { IMAGEGATE_PORT: 'abc' } }, 'IMAGEGATE_PORT: must be an integer from 0 to 65535, got "abc"'],
    ['unknown YAML key', { argv: ['--config', 'portt.yaml'] }, 'portt.yaml: unknown key "portt" (line 3)'],
    ['YAML wrong type', { argv: ['--config', 'type.yaml'] }, 'type.yaml: port: must be an integer from 0 to 65535, got a list (line 2)'],
    ['YAML string expected', { argv: ['--config', 'host.yaml'] }, 'host.yaml: host: must be a string, got a number (line 1)'],
    ['YAML syntax error', { argv: ['--config', 'syntax.yaml'] }, 'syntax.yaml: invalid YAML: Missing closing "quote (line 3)'],
    // Flags and variables cannot be empty; only YAML can give an empty string.
    ['YAML empty state folder', { argv: ['--config', 'empty-state.yaml'] }, 'empty-state.yaml: state-dir: must be a folder path, got "" (line 1)'],
    ['YAML empty store folder', { argv: ['--config', 'empty-store.yaml'] }, 'empty-store.yaml: store-dir: must be a folder path, got "" (line 2)'],
    ['missing --config file', { argv: ['--config', 'missing.yaml'] }, '--config: file "missing.yaml" does not exist'],
    ['missing IMAGEGATE_CONFIG file', { env: { IMAGEGATE_CONFIG: 'missing.yaml' } }, 'IMAGEGATE_CONFIG: file "missing.yaml" does not exist'],
    ['bad log level', { argv: ['--log-level', 'loud'] }, '--log-level: must be one of fatal, error, warn, info, debug, trace, silent, got "loud"'],
    ['bad public URL', { argv: ['--public-url', '/imagegate'] }, '--public-url: must be an absolute http or https URL, got "/imagegate"'],
    ['bad host', { argv: ['--host', 'a b'] }, '--host: must be a host name or IP address (IPv6 without brackets), got "a b"']
  ]
  for (const [name, over, message] of cases) {
    const given = { argv: [], env: {}, cwd: dir, homedir: join(dir, 'home'), ...over }
    const err = t.throws(() => resolveOptions(given), new ConfigError(message), name) as Error
    t.notMatch(err.message, '\n', `${name}: one line`)
  }
})

t.test('secrets never appear in messages', async t => {
  const secret = 'hunter2'
  const dir = t.testdir({
    'key.yaml': `upstream-api-key: [${secret}]\n`,
    'broken.yaml': `upstream-api-key: "${secret}\n`,
    'alias.yaml': `upstream-api-key: *${secret}\n`
  })
  const cases: Array<Partial<ResolveInput>> = [
    { argv: ['--upstream', `http://user:${secret}@h/v1?x`] },
    { argv: ['--upstream', `ftp://user:${secret}@h`] },
    { argv: [`--upstream-api-ky=${secret}`] },
    { argv: ['--upstream-api-key', `${secret} x`] },
    { argv: [`http://user:${secret}@h`] },
    { env: { IMAGEGATE_UPSTREAM_API_KEY: `${secret}\n` } },
    { argv: ['--public-url', `http://user:${secret}@h`] },
    { argv: ['--config', 'key.yaml'] },
    { argv: ['--config', 'broken.yaml'] },
    { argv: ['--config', 'alias.yaml'] }
  ]
  for (const over of cases) {
    const err = t.throws(() => resolveOptions({ argv: [], env: {}, cwd: dir, homedir: dir, ...over })) as Error
    t.notMatch(err.message, secret, `"${err.message}" does not show the secret`)
  }
})

t.test('flags beat environment, which beats the file, which beats defaults', async t => {
  const dir = t.testdir({
    flag: {},
    env: {},
    file: {},
    'all.yaml': [
      'upstream: http://file:1',
      'cache-dir: file',
      'port: 3',
      'host: file.local',
      'public-url: http://file.example',
      'upstream-api-key: file-key',
      'log-level: error',
      'signing-key: f1l3-k9y-w7q2-x8z4-c5v6-b0n3-m1a2',
      'no-signing: true',
      'state-dir: file',
      'allow-svg: true',
      'shutdown-grace: 3',
      'keepalive: 3',
      'mode: data-uri',
      'inline-max-bytes: 3',
      'store-dir: file',
      'data-image-max-bytes: 3',
      'store-max-bytes: 3',
      'compact-images: off',
      'compact-quality: 3',
      'compact-max-width: 3',
      'compact-max-bytes: 3',
      'drop-named-events: true',
      ''
    ].join('\n'),
    home: {}
  })
  // key → [flag value, env value, expected option] with the file's values above.
  const values: Record<Key, [string, string, (source: string) => unknown]> = {
    upstream: ['http://flag:1', 'http://env:1', source => new URL(`http://${source}:1/v1`)],
    'cache-dir': ['flag', 'env', source => [join(dir, source)]],
    port: ['1', '2', source => ({ flag: 1, env: 2, file: 3 })[source]],
    host: ['flag.local', 'env.local', source => `${source}.local`],
    'public-url': ['http://flag.example/', 'http://env.example', source => `http://${source}.example`],
    'upstream-api-key': ['flag-key', 'env-key', source => `${source}-key`],
    'log-level': ['debug', 'warn', source => ({ flag: 'debug', env: 'warn', file: 'error' })[source]],
    'signing-key': ['fL4g-9k3y-q7w2-8x4z-5c6v-0b3n-1m2a', '3nv-k9y7-w2q8-x4z5-c6v0-b3n1-m2a9', source => ({ flag: 'fL4g-9k3y-q7w2-8x4z-5c6v-0b3n-1m2a', env: '3nv-k9y7-w2q8-x4z5-c6v0-b3n1-m2a9', file: 'f1l3-k9y-w7q2-x8z4-c5v6-b0n3-m1a2' })[source]],
    // A boolean flag takes no value: '' means "the flag alone".
    'no-signing': ['', 'false', source => source !== 'env'],
    'state-dir': ['flag', 'env', source => join(dir, source)],
    'allow-svg': ['', 'no', source => source !== 'env'],
    'shutdown-grace': ['1', '2.5', source => ({ flag: 1, env: 2.5, file: 3 })[source]],
    keepalive: ['1', '0', source => ({ flag: 1, env: 0, file: 3 })[source]],
    mode: ['data-uri', 'link', source => source === 'env' ? 'link' : 'data-uri'],
    'inline-max-bytes': ['1', '2', source => ({ flag: 1, env: 2, file: 3 })[source]],
    'store-dir': ['flag', 'env', source => join(dir, source)],
    'data-image-max-bytes': ['1', '2', source => ({ flag: 1, env: 2, file: 3 })[source]],
    'store-max-bytes': ['1', '0', source => ({ flag: 1, env: 0, file: 3 })[source]],
    'compact-images': ['avif', 'WEBP', source => ({ flag: 'avif', env: 'webp', file: 'off' })[source]],
    'compact-quality': ['1', '2', source => ({ flag: 1, env: 2, file: 3 })[source]],
    'compact-max-width': ['1', '0', source => ({ flag: 1, env: 0, file: 3 })[source]],
    'compact-max-bytes': ['1', '2', source => ({ flag: 1, env: 2, file: 3 })[source]],
    'drop-named-events': ['', 'no', source => source !== 'env']
  }
  const field: Record<Key, keyof Options> = {
    upstream: 'upstream',
    'cache-dir': 'cacheDirs',
    port: 'port',
    host: 'host',
    'public-url': 'publicUrl',
    'upstream-api-key': 'upstreamApiKey',
    'log-level': 'logLevel',
    'signing-key': 'signingKey',
    'no-signing': 'noSigning',
    'state-dir': 'stateDir',
    'allow-svg': 'allowSvg',
    'shutdown-grace': 'shutdownGrace',
    keepalive: 'keepalive',
    mode: 'mode',
    'inline-max-bytes': 'inlineMaxBytes',
    'store-dir': 'storeDir',
    'data-image-max-bytes': 'dataImageMaxBytes',
    'store-max-bytes': 'storeMaxBytes',
    'compact-images': 'compactImages',
    'compact-quality': 'compactQuality',
    'compact-max-width': 'compactMaxWidth',
    'compact-max-bytes': 'compactMaxBytes',
    'drop-named-events': 'dropNamedEvents'
  }
  const defaults = run({ argv: [], env: {}, cwd: dir, homedir: join(dir, 'home') }).options
  for (const key of KEYS) {
    const [flagValue, envValue, expected] = values[key]
    const argv = flagValue === '' ? [`--${key}`] : [`--${key}`, flagValue]
    const env = { [envName(key)]: envValue }
    const file = ['--config', 'all.yaml']
    const get = (over: Partial<ResolveInput>): unknown =>
      run({ argv: [], env: {}, cwd: dir, homedir: join(dir, 'home'), ...over }).options[field[key]]
    t.same(get({ argv: [...argv, ...file], env }), expected('flag'), `${key}: flag over env and file`)
    t.same(get({ argv: file, env }), expected('env'), `${key}: env over file`)
    t.same(get({ argv: file }), expected('file'), `${key}: file over default`)
    t.same(get({ env: { IMAGEGATE_CONFIG: 'all.yaml' } }), expected('file'), `${key}: file named by IMAGEGATE_CONFIG`)
    t.same(get({}), defaults[field[key]], `${key}: default`)
  }
  t.same(run({ argv: ['--config', 'all.yaml'], env: { IMAGEGATE_CONFIG: 'missing.yaml' }, cwd: dir, homedir: dir }).options.port, 3,
    '--config beats IMAGEGATE_CONFIG')
})

t.test('cache-dir takes several folders from each source', async t => {
  const dir = t.testdir({ a: {}, b: {}, 'list.yaml': 'cache-dir:\n  - a\n  - b\n' })
  const base = { argv: [], env: {}, cwd: dir, homedir: dir }
  const both = [join(dir, 'a'), join(dir, 'b')]
  t.same(run({ ...base, argv: ['--cache-dir', 'a', '--cache-dir', 'b'] }).options.cacheDirs, both, 'repeated flag')
  t.same(run({ ...base, env: { IMAGEGATE_CACHE_DIR: `a:${join(dir, 'b')}` } }).options.cacheDirs, both, 'joined in the variable')
  t.same(run({ ...base, argv: ['--config', 'list.yaml'] }).options.cacheDirs, both, 'a YAML list')
  t.same(run({ ...base, argv: ['--cache-dir', 'a'] }).warnings, [], 'no warning when folders are given')
})

t.test('unknown IMAGEGATE_ variables are warned about', async t => {
  const { warnings } = run(input(t, { env: { IMAGEGATE_PROT: '1' } }))
  t.equal(warnings[0], 'unknown environment variable IMAGEGATE_PROT ignored', 'typo in a variable name')
})

t.test('config.example.yaml loads and only restates the defaults', async t => {
  const home = t.testdir({ '.hermes': { cache: { images: {} } } })
  const base = { argv: [], env: {}, cwd: ROOT, homedir: home }
  const example = run({ ...base, argv: ['--config', 'config.example.yaml'] })
  t.same(example, run(base), 'same options and warnings as no file at all')
  // That it names every key, and only keys, is checked in option-table.test.ts.
})

t.test('an upstream that is imagegate\'s own listening address is refused at start', async t => {
  const own = (listen: string) => `is imagegate's own address (it listens on ${listen}), so every request would be forwarded to itself; give the agent backend's URL, e.g. "http://127.0.0.1:8642/v1"`
  const dir = t.testdir({ 'swap.yaml': 'upstream: http://localhost:8090\nport: 8090\n', home: {} })
  const cases: Array<[string, Partial<ResolveInput>, string]> = [
    ['ports swapped', { argv: ['--upstream', 'http://127.0.0.1:8090'] }, `--upstream: "http://127.0.0.1:8090/v1" ${own('127.0.0.1:8090')}`],
    ['localhost for 127.0.0.1', { argv: ['--upstream', 'http://localhost:8091/v1', '--port', '8091'] }, `--upstream: "http://localhost:8091/v1" ${own('127.0.0.1:8091')}`],
    ['a wildcard listener', { env: { IMAGEGATE_UPSTREAM: 'http://127.0.0.1:8090', IMAGEGATE_HOST: '0.0.0.0' } }, `IMAGEGATE_UPSTREAM: "http://127.0.0.1:8090/v1" ${own('0.0.0.0:8090')}`],
    ['the default upstream\'s port given as the port', { argv: ['--port', '8642'] }, `--port: "http://127.0.0.1:8642/v1" ${own('127.0.0.1:8642')}`],
    ['in the config file', { argv: ['--config', 'swap.yaml'] }, `swap.yaml: upstream: "http://localhost:8090/v1" ${own('127.0.0.1:8090')} (line 1)`],
    ['one of this machine\'s addresses', { argv: ['--upstream', 'http://192.0.2.7:8090', '--host', '::'] }, `--upstream: "http://192.0.2.7:8090/v1" ${own('[::]:8090')}`]
  ]
  for (const [name, over, message] of cases) {
    const given = { argv: [], env: {}, cwd: dir, homedir: join(dir, 'home'), ...over }
    t.throws(() => resolveSourcesWith(given, ['192.0.2.7']), new ConfigError(message), name)
  }
  t.throws(() => resolveOptions(input(t, { argv: ['--upstream', 'http://127.0.0.1:8090'] })), ConfigError, 'resolveOptions refuses it too')
  t.equal(run(input(t, { argv: ['--upstream', 'http://127.0.0.1:8090', '--port', '0'] })).options.port, 0, 'port 0: not known yet, checked at listen')
  t.equal(run(input(t, { argv: ['--upstream', 'http://127.0.0.1:8642', '--port', '8090'] })).options.port, 8090, 'the usual setup passes')
})

t.test('an upstream pasted with its endpoint is refused at start', async t => {
  t.throws(() => resolveOptions(input(t, { argv: ['--upstream', 'http://host:8642/v1/chat/completions'] })),
    new ConfigError('--upstream: ends in the endpoint "/chat/completions"; give the base URL, e.g. "http://host:8642/v1"'), 'names what to write instead')
})

t.test('a weak signing key is refused at start, from any source', async t => {
  const dir = t.testdir({ 'example.yaml': readFileSync(join(ROOT, 'config.example.yaml'), 'utf8').replace('# signing-key:', 'signing-key:'), home: {} })
  t.throws(() => resolveOptions({ argv: ['--config', 'example.yaml'], env: {}, cwd: dir, homedir: join(dir, 'home') }),
    { message: /^example\.yaml: signing-key: must be a secret of your own, not the placeholder from config\.example\.yaml \(e\.g\. openssl rand -hex 32\) \(line \d+\)$/ },
    'the example file\'s key, uncommented')
  t.throws(() => resolveOptions(input(t, { env: { IMAGEGATE_SIGNING_KEY: 'x'.repeat(40) } })),
    new ConfigError('IMAGEGATE_SIGNING_KEY: must use at least 8 different characters, got 1 (e.g. openssl rand -hex 32)'), 'one character repeated')
})

function resolveSourcesWith (given: ResolveInput, localAddresses: string[]): void {
  const flags = readFlags(given.argv)
  const fromEnv = readEnv(given.env)
  const configFile = flags.config ?? fromEnv.config
  const fromFile = configFile === undefined ? {} : loadConfigFile(configFile, given.cwd, given.homedir)
  resolveSources([flags.values, fromEnv.values, fromFile], { ...given, localAddresses })
}
