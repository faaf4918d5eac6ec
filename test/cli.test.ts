import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, chownSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import t from 'tap'
import { exitCodeFor, isMainModule, main, type Output } from '../src/cli.js'
import { KEYS, type Key } from '../src/config/option-table.js'
import { envName } from '../src/config/sources.js'
import { cleanEnv, startCli } from './fixtures/cli-process.js'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url))
const TS_SPECIFIERS = `--import=${new URL('./fixtures/ts-specifiers.mjs', import.meta.url).href}`
const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version

const capture = (): Output & { out: string[], err: string[] } => {
  const out: string[] = []
  const err: string[] = []
  return { out, err, stdout: { write: text => out.push(text) }, stderr: { write: text => err.push(text) } }
}

interface Child { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

// Runs src/cli.ts in a new Node with this process's flags, so tap's TypeScript loader applies.
// With `uid`, as that user, and with none of tap's loaders: its process recorder writes
// into the repository's .tap folder at exit, which an unprivileged user may not. tap
// hands the recorder to every child in NODE_OPTIONS, which `env -u` takes out again.
const runCli = async (args: string[], env = cleanEnv(), uid?: number): Promise<Child> => {
  const child = uid === undefined
    ? spawn(process.execPath, [...process.execArgv, CLI, ...args], { cwd: ROOT, env })
    : spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, TS_SPECIFIERS, CLI, ...args], { cwd: ROOT, env, uid, gid: uid })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (text: string) => { stdout += text })
  child.stderr.setEncoding('utf8').on('data', (text: string) => { stderr += text })
  const [code, signal] = await once(child, 'close') as [number | null, NodeJS.Signals | null]
  return { code, signal, stdout, stderr }
}

t.test('isMainModule compares real paths', async t => {
  const dir = t.testdir({ 'cli.js': '' })
  symlinkSync(join(dir, 'cli.js'), join(dir, 'imagegate'))
  const url = pathToFileURL(join(dir, 'cli.js')).href
  t.ok(isMainModule(url, join(dir, 'cli.js')), 'the file itself')
  t.ok(isMainModule(url, join(dir, 'imagegate')), 'through a bin symlink')
  t.notOk(isMainModule(url, join(dir, 'other.js')), 'a path that does not exist')
  t.notOk(isMainModule(url, undefined), 'no script (REPL)')
  t.notOk(isMainModule(pathToFileURL(join(dir, 'lib.js')).href, join(dir, 'cli.js')), 'another module')
})

t.test('exitCodeFor gives a signal\'s exit code as a shell reports it, 128 + its number (the second signal itself: shutdown.test.ts)', async t => {
  t.equal(exitCodeFor('SIGINT'), 130, 'SIGINT')
  t.equal(exitCodeFor('SIGTERM'), 143, 'SIGTERM')
})

t.test('main prints help and the version to stdout', async t => {
  const help = capture()
  t.equal(await main(['--help'], {}, help), 0, 'help exits 0')
  t.match(help.out.join(''), /^Usage: imagegate \[flags\]\n[^]*--upstream URL[^]*\n$/, 'help text')
  t.same(help.err, [], 'nothing on stderr')
  const version = capture()
  t.equal(await main(['--version'], {}, version), 0, 'version exits 0')
  t.same(version.out, [`imagegate ${VERSION}\n`], 'version text')
})

t.test('main reports a config error on one line and returns 2', async t => {
  const io = capture()
  t.equal(await main(['--port', '70000'], {}, io), 2, 'usage error')
  t.same(io.err, ['imagegate: --port: must be an integer from 0 to 65535, got "70000"\n'], 'one line')
  t.same(io.out, [], 'nothing on stdout')
})

/**
 * A value each option refuses, and the rule its message names. `text`: refused as a flag,
 * a variable and a YAML string alike. A switch takes no value as a flag, and refuses
 * anything but true or false elsewhere. A folder imagegate creates takes any path, so
 * only an empty one is refused; an empty variable means unset, so none is refused there.
 */
type Refused = { text: string, rule: string } | 'switch' | 'folder'

const REFUSED = (missing: string): Record<Key, Refused> => ({
  upstream: { text: 'localhost:8642', rule: 'must be an absolute http or https URL, got "localhost:8642"' },
  'cache-dir': { text: missing, rule: `${JSON.stringify(missing)} does not exist` },
  port: { text: '70000', rule: 'must be an integer from 0 to 65535, got "70000"' },
  host: { text: 'a b', rule: 'must be a host name or IP address (IPv6 without brackets), got "a b"' },
  'public-url': { text: '/imagegate', rule: 'must be an absolute http or https URL, got "/imagegate"' },
  'upstream-api-key': { text: 'two words', rule: 'must be non-empty printable text without spaces' },
  'log-level': { text: 'loud', rule: 'must be one of fatal, error, warn, info, debug, trace, silent, got "loud"' },
  'signing-key': { text: 'short-secret', rule: 'must be at least 32 characters (e.g. openssl rand -hex 32)' },
  'no-signing': 'switch',
  'state-dir': 'folder',
  'allow-svg': 'switch',
  'shutdown-grace': { text: '-1', rule: 'must be a number of seconds from 0 to 86400, got "-1"' },
  keepalive: { text: 'soon', rule: 'must be a number of seconds from 0 to 86400, got "soon"' },
  mode: { text: 'inline', rule: 'must be one of link, data-uri, got "inline"' },
  'inline-max-bytes': { text: '1.5', rule: 'must be a whole number of bytes, got "1.5"' },
  'store-dir': 'folder',
  'data-image-max-bytes': { text: '-1', rule: 'must be a whole number of bytes, got "-1"' },
  'store-max-bytes': { text: '1e9', rule: 'must be a whole number of bytes, got "1e9"' },
  'compact-images': { text: 'jpeg', rule: 'must be one of webp, avif, off, got "jpeg"' },
  'compact-quality': { text: '0', rule: 'must be an integer from 1 to 100, got "0"' },
  'compact-max-width': { text: '16384', rule: 'must be an integer from 0 to 16383, got "16384"' },
  'compact-max-bytes': { text: 'lots', rule: 'must be a whole number of bytes, got "lots"' },
  'drop-named-events': 'switch'
})

t.test('a bad value of any option, from any source, is one line naming where it came from and the rule; exit 2', async t => {
  const dir = t.testdir({})
  const refused = REFUSED(join(dir, 'nope'))
  for (const key of KEYS) {
    const bad = refused[key]
    const env = envName(key)
    const yaml = join(dir, `${key}.yaml`)
    const cases: Array<[string, string[], NodeJS.ProcessEnv, string]> = []
    if (bad === 'switch') {
      writeFileSync(yaml, `${key}: maybe\n`)
      cases.push(
        ['flag', [`--${key}=yes`], {}, `--${key}: takes no value`],
        ['variable', [], { [env]: 'maybe' }, `${env}: must be true or false, got "maybe"`],
        ['YAML', ['--config', yaml], {}, `${yaml}: ${key}: must be true or false, got "maybe" (line 1)`]
      )
    } else if (bad === 'folder') {
      writeFileSync(yaml, `${key}: ""\n`)
      cases.push(
        ['flag', [`--${key}=`], {}, `--${key}: needs a value`],
        ['YAML', ['--config', yaml], {}, `${yaml}: ${key}: must be a folder path, got "" (line 1)`]
      )
    } else {
      writeFileSync(yaml, `${key}: ${JSON.stringify(bad.text)}\n`)
      cases.push(
        ['flag', [`--${key}`, bad.text], {}, `--${key}: ${bad.rule}`],
        ['variable', [], { [env]: bad.text }, `${env}: ${bad.rule}`],
        ['YAML', ['--config', yaml], {}, `${yaml}: ${key}: ${bad.rule} (line 1)`]
      )
    }
    for (const [source, argv, given, message] of cases) {
      const io = capture()
      t.equal(await main(argv, given, io), 2, `${key} from a ${source}: exit 2`)
      t.same(io.err, [`imagegate: ${message}\n`], `${key} from a ${source}: one line`)
      t.same(io.out, [], `${key} from a ${source}: nothing on stdout`)
    }
  }
})

t.test('main reports any other failure on one line and returns 1', async t => {
  const listeners = [process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')]
  const dir = t.testdir({ images: {}, state: {} })
  // error: the new signing key the start makes is logged at info, and is not the point here.
  const args = ['--cache-dir', join(dir, 'images'), '--state-dir', join(dir, 'state'), '--log-level', 'error']

  // A real failure to start: the port is taken.
  const taken = net.createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { taken.close() })
  const { port } = taken.address() as net.AddressInfo
  const busy = capture()
  t.equal(await main([...args, '--host', '127.0.0.1', '--port', String(port)], {}, busy), 1, 'failure')
  t.same(busy.err, [`imagegate: listen EADDRINUSE: address already in use 127.0.0.1:${port}\n`], 'the error, on one line')

  // Whatever else is thrown while starting (here by the environment it reads).
  const throwing = (thrown: unknown): NodeJS.ProcessEnv => new Proxy({}, { get: () => { throw thrown } })
  const multiLine = capture()
  t.equal(await main(args, throwing(new Error('the first line\n    at somewhere')), multiLine), 1, 'an Error')
  t.same(multiLine.err, ['imagegate: the first line\n'], 'first line of the message only')
  const other = capture()
  t.equal(await main(args, throwing('not an Error'), other), 1, 'a thrown non-Error')
  t.same(other.err, ['imagegate: not an Error\n'], 'shown as text')
  t.same([process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')], listeners, 'signal listeners removed')
})

t.test('the CLI as a process', async t => {
  t.test('--help', async t => {
    const { code, stdout, stderr } = await runCli(['--help'])
    t.equal(code, 0, 'exit 0')
    t.match(stdout, /^Usage: imagegate/, 'help on stdout')
    t.equal(stderr, '', 'nothing on stderr')
  })
  t.test('--version', async t => {
    const { code, stdout, stderr } = await runCli(['--version'])
    t.equal(code, 0, 'exit 0')
    t.equal(stdout, `imagegate ${VERSION}\n`, 'version on stdout')
    t.equal(stderr, '', 'nothing on stderr')
  })
  t.test('a bad flag', async t => {
    const { code, stdout, stderr } = await runCli(['--portt', '1'])
    t.equal(code, 2, 'exit 2')
    t.equal(stderr, 'imagegate: unknown flag "--portt" (see --help)\n', 'exactly one line, no stack trace')
    t.equal(stdout, '', 'nothing on stdout')
  })
  t.test('a bad environment variable', async t => {
    const { code, stderr } = await runCli([], cleanEnv({ IMAGEGATE_LOG_LEVEL: 'loud' }))
    t.equal(code, 2, 'exit 2')
    t.equal(stderr.split('\n').length, 2, 'one line')
    t.match(stderr, /^imagegate: IMAGEGATE_LOG_LEVEL: must be one of /, 'names the variable')
  })
  // Tests run as root, who may write anywhere: the CLI runs as nobody, as the image's
  // own user meets a volume made by another uid.
  t.test('a folder it may not write, as an unprivileged user', async t => {
    const NOBODY = 65534
    const dir = t.testdir({ images: {}, state: { store: {}, compact: {} } })
    const state = join(dir, 'state')
    chownSync(state, NOBODY, NOBODY)
    // Every folder on the way from the repository must be searchable by nobody.
    for (let up = dir; up !== resolve(ROOT); up = dirname(up)) chmodSync(up, statSync(up).mode | 0o055)
    const args = ['--cache-dir', join(dir, 'images'), '--state-dir', state, '--port', '0', '--log-level', 'error']
    const store = await runCli(args, cleanEnv(), NOBODY)
    t.equal(store.code, 2, 'a root-owned store folder: exit 2, as for any configuration mistake')
    t.equal(store.stderr, `imagegate: --store-dir: cannot keep the images sent as data: URLs in "${join(state, 'store')}" (EACCES); give a folder this user may write with --store-dir (by default <state-dir>/store)\n`, 'one line: the option, the folder, the cause, what to do')
    chownSync(join(state, 'store'), NOBODY, NOBODY)
    const compact = await runCli([...args, '--compact-images', 'webp'], cleanEnv(), NOBODY)
    t.equal(compact.code, 2, 'a root-owned compact folder: exit 2')
    t.equal(compact.stderr, `imagegate: --state-dir: cannot keep compact images in "${join(state, 'compact')}" (EACCES); give a folder this user may write with --state-dir, or --compact-images off\n`, 'one line naming what to change')
    const off = await runCli([...args, '--compact-images', 'off', '--version'], cleanEnv(), NOBODY)
    t.equal(off.code, 0, 'nobody can run the CLI at all (the checks above are about the folders)')
  })
})

t.test('the CLI serves until SIGTERM or SIGINT, then closes and exits 0', async t => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    t.test(signal, async t => {
      const dir = t.testdir({ images: {} })
      const args = ['--port', '0', '--cache-dir', dir, '--upstream', 'http://127.0.0.1:9', '--log-level', 'info']
      const cli = await startCli(t, args)
      t.match(cli.stdout(), /listening[^\n]*http:\/\/127\.0\.0\.1:\d+/, 'logs where it listens')
      cli.kill(signal)
      const { code, signal: exitSignal } = await cli.exited
      t.equal(exitSignal, null, 'not killed by the signal')
      t.equal(code, 0, 'exit 0 after closing')
      t.equal(cli.stderr(), '', 'nothing on stderr')
    })
  }
})
