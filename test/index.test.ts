// The package as npm installs it: built, packed, installed into a fresh project and
// imported by plain Node ESM, with nothing from this repository on the import path.
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { IMAGE_NAME, IMAGE_PATH, PNG } from './fixtures/hermes.js'
import { DONE, contentEvents } from './fixtures/chat.js'
import { sse, startMockUpstream } from './fixtures/mock-upstream.js'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const PACKAGE = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }
// Build, pack and an install from the registry's cache take about 20 s here.
const STEP_TIMEOUT_MS = 120_000

/**
 * The environment for the child processes, without tap's coverage hooks: the installed
 * copy is not this repository's source, and its coverage must not be merged into it.
 */
function childEnv (): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const name of Object.keys(env)) {
    if (name === 'NODE_OPTIONS' || name.startsWith('NODE_V8_COVERAGE') || name.startsWith('TAP') || name.startsWith('_TAPJS')) delete env[name]
  }
  return env
}

function run (command: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, env: childEnv(), timeout: STEP_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${command} ${args.join(' ')} failed: ${err.message}\n${stderr}`))
      else resolve(stdout)
    })
  })
}

const SCRIPT = `
import { createImagegate, resolveImagegateOptions, ConfigError, ImagegateError, VERSION } from 'imagegate'

const [upstream, cache, stateDir] = process.argv.slice(2)
const gate = await createImagegate({ upstream, cacheDirs: [cache], port: 0, logLevel: 'silent', stateDir })
const res = await fetch(gate.url + '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"stream":true}' })
const answer = await res.text()
let refused
try {
  resolveImagegateOptions({ upstream: 'http://host:8642/v1/chat/completions' })
} catch (err) {
  refused = { configError: err instanceof ConfigError, imagegateError: err instanceof ImagegateError, message: err.message }
}
await gate.close()
const closed = await fetch(gate.url + '/healthz').then(() => false, () => true)
console.log(JSON.stringify({ version: VERSION, resolved: import.meta.resolve('imagegate'), url: gate.url, status: res.status, answer, refused, closed }))
`

t.test('npm pack, npm install, import \'imagegate\': start on port 0, answer, close', async t => {
  const dir = t.testdir({
    'package.json': JSON.stringify({ name: 'embedding-app', private: true, type: 'module' }),
    'main.mjs': SCRIPT,
    cache: { [IMAGE_NAME]: PNG },
    state: {}
  })
  await run('npm', ['run', 'build'], ROOT)
  const [packed] = JSON.parse(await run('npm', ['pack', '--json', '--pack-destination', dir], ROOT)) as Array<{ filename: string, files: Array<{ path: string }> }>
  if (packed === undefined) throw new Error('npm pack made no tarball')
  const files = packed.files.map((file) => file.path)
  t.ok(files.includes('dist/index.js') && files.includes('dist/index.d.ts'), 'the tarball holds the entry point and its types')
  t.notOk(files.some((file) => file.startsWith('src/') || file.startsWith('test/')), 'and no sources or tests')

  // Dependencies come from the registry (through npm's cache): the tarball has no lockfile.
  await run('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', '--prefer-offline', '--omit=optional', `./${packed.filename}`], dir)

  const upstream = await startMockUpstream(sse([...contentEvents([`Here: MEDIA:${IMAGE_PATH} `]), DONE]))
  t.teardown(() => upstream.close())
  const out = await run(process.execPath, ['main.mjs', upstream.url, path.join(dir, 'cache'), path.join(dir, 'state')], dir)
  const result = JSON.parse(out) as { version: string, resolved: string, url: string, status: number, answer: string, refused: unknown, closed: boolean }

  t.equal(result.version, PACKAGE.version, 'VERSION is the package\'s')
  t.equal(fileURLToPath(result.resolved), path.join(fs.realpathSync(dir), 'node_modules', 'imagegate', 'dist', 'index.js'), '\'imagegate\' resolves to the installed copy')
  t.match(result.url, /^http:\/\/127\.0\.0\.1:\d+$/, 'it listened on a port of its own')
  t.equal(result.status, 200, 'the chat request was answered')
  t.match(result.answer, new RegExp(`\\]\\(${result.url}/images/[\\w-]+/${IMAGE_NAME}\\?sig=[\\w-]+\\)`), 'with the path rewritten into a signed link')
  t.same(result.refused, {
    configError: true,
    imagegateError: true,
    message: 'options.upstream: ends in the endpoint "/chat/completions"; give the base URL, e.g. "http://host:8642/v1"'
  }, 'options are validated as on the command line, with the error classes exported')
  t.ok(result.closed, 'after close() nothing listens')
  t.equal(upstream.requests.length, 1, 'the upstream was asked once')
})
