// The Dockerfile checked against the code it packages: no Docker engine needed, so a
// renamed flag, a moved entry point or a changed default port fails here, not in a
// user's `docker run`.
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { resolveOptions } from '../../src/config/resolve.js'
import { DEFAULT_PORT } from '../../src/config/options.js'
import { KEYS, envName } from '../../src/config/sources.js'
import { DEFAULT_TIMEOUT_MS } from '../../src/healthcheck.js'
import { envOf, execForm, parseDockerfile } from '../fixtures/dockerfile.js'
import type { Instruction } from '../fixtures/dockerfile.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const read = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8')
const instructions = parseDockerfile(read('Dockerfile'))
const finalStage = Math.max(...instructions.map((i) => i.stage))
const inFinal = instructions.filter((i) => i.stage === finalStage)
const only = (list: Instruction[], keyword: string): Instruction => {
  const found = list.filter((i) => i.keyword === keyword)
  if (found.length !== 1) throw new Error(`expected one ${keyword} in the final stage, found ${found.length}`)
  return found[0] as Instruction
}
const finalEnv = Object.assign({}, ...inFinal.filter((i) => i.keyword === 'ENV').map((i) => envOf(i.args))) as Record<string, string>

t.test('the parser', async t => {
  const parsed = parseDockerfile('# c\nFROM a AS b\nRUN x \\\n  # inside\n  && y\n\nenv A=1 B="two words"\nFROM c\nENV OLD value here\n')
  t.same(parsed.map((i) => [i.keyword, i.args, i.stage, i.line]), [
    ['FROM', 'a AS b', 0, 2],
    ['RUN', 'x && y', 0, 3],
    ['ENV', 'A=1 B="two words"', 0, 7],
    ['FROM', 'c', 1, 8],
    ['ENV', 'OLD value here', 1, 9]
  ], 'instructions, stages and lines; continuations joined, comments dropped')
  t.same(envOf('A=1 B="two words"'), { A: '1', B: 'two words' }, 'ENV key=value pairs')
  t.same(envOf('OLD value here'), { OLD: 'value here' }, 'legacy ENV')
  t.same(execForm('["node", "x.js"]'), ['node', 'x.js'], 'exec form')
  t.equal(execForm('node x.js'), undefined, 'shell form')
  t.equal(execForm('[1, 2]'), undefined, 'not strings')
})

t.test('multi-stage on Node 24 slim: built with dev dependencies, run without them', async t => {
  const froms = instructions.filter((i) => i.keyword === 'FROM')
  t.ok(froms.length >= 2, 'several stages')
  for (const from of froms) t.match(from.args, /^node:24-slim(\s|$)/, `line ${from.line}: Node 24 LTS slim`)
  const build = froms.find((from) => / AS build$/i.test(from.args))
  t.ok(build !== undefined, 'a stage named build')
  const buildRuns = instructions.filter((i) => i.stage === build?.stage && i.keyword === 'RUN').map((i) => i.args)
  t.same(buildRuns, ['npm ci', 'npm run build'], 'the build stage installs everything, then builds')
  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string>, bin: Record<string, string> }
  t.match(pkg.scripts.build, /tsc -p tsconfig\.build\.json/, 'npm run build compiles with tsconfig.build.json')

  const deps = instructions.find((i) => i.keyword === 'RUN' && /npm ci --omit=dev/.test(i.args))
  t.ok(deps !== undefined && deps.stage !== finalStage && deps.stage !== build?.stage, 'production dependencies installed in a stage of their own')
  const copies = inFinal.filter((i) => i.keyword === 'COPY').map((i) => i.args)
  t.same(copies, ['--from=deps /app/node_modules ./node_modules', '--from=build /app/dist ./dist', 'package.json ./'], 'the final stage holds production modules, dist and package.json, nothing else')
  t.notOk(inFinal.some((i) => i.keyword === 'RUN' && /npm (ci|install)/.test(i.args)), 'no install in the final stage')
})

t.test('ENTRYPOINT runs the compiled CLI, so flags follow the image name', async t => {
  const entrypoint = execForm(only(inFinal, 'ENTRYPOINT').args)
  t.same(entrypoint, ['node', 'dist/cli.js'], 'exec form: node dist/cli.js (signals reach Node, not a shell)')
  t.equal(only(inFinal, 'WORKDIR').args, '/app', 'relative to /app')
  const build = JSON.parse(read('tsconfig.build.json')) as { compilerOptions: { rootDir: string, outDir: string } }
  const compiled = path.join(build.compilerOptions.outDir, path.relative(build.compilerOptions.rootDir, 'src/cli.ts')).replace(/\.ts$/, '.js')
  t.equal(compiled, 'dist/cli.js', 'tsconfig.build.json compiles src/cli.ts to dist/cli.js')
  t.ok(existsSync(path.join(ROOT, 'src/cli.ts')), 'src/cli.ts exists')
  const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string> }
  t.equal(pkg.bin.imagegate, './dist/cli.js', 'the same file npm installs as the imagegate bin')
  t.notOk(inFinal.some((i) => i.keyword === 'CMD'), 'no CMD: docker run arguments are imagegate\'s flags')
})

t.test('the image runs Node with the V8 flags npm start gives it', async t => {
  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> }
  const start = pkg.scripts.start?.split(' ') ?? []
  t.same([start[0], start.at(-1)], ['node', 'dist/cli.js'], 'npm start runs node … dist/cli.js')
  const flags = start.slice(1, -1)
  t.same(flags, ['--max-semi-space-size=16'], 'with the young generation bounded')
  t.equal(finalEnv.NODE_OPTIONS, flags.join(' '), 'the image passes the same flags in NODE_OPTIONS')
})

t.test('runs as the unprivileged node user, with its state folder writable', async t => {
  const user = only(inFinal, 'USER')
  t.equal(user.args, 'node', 'USER node')
  const entrypoint = only(inFinal, 'ENTRYPOINT')
  t.ok(user.line < entrypoint.line, 'set before the entry point')
  const stateDir = finalEnv[envName('state-dir')]
  t.equal(stateDir, '/var/lib/imagegate', 'IMAGEGATE_STATE_DIR is set')
  const prepare = inFinal.find((i) => i.keyword === 'RUN' && i.args.includes(`chown node:node ${stateDir ?? ''}`))
  t.ok(prepare !== undefined && prepare.line < user.line, 'created and given to node while still root')
  t.same(inFinal.filter((i) => i.keyword === 'VOLUME').map((i) => i.args), [stateDir], 'and declared a volume, so the signing key outlives the container')
})

t.test('EXPOSE and the listening address match the defaults', async t => {
  t.equal(only(inFinal, 'EXPOSE').args, String(DEFAULT_PORT), `EXPOSE ${DEFAULT_PORT}, the default port`)
  t.equal(finalEnv[envName('host')], '0.0.0.0', 'listens on every interface inside the container')
})

t.test('every IMAGEGATE_* variable it sets is a real key with a valid value', async t => {
  const known = new Set(KEYS.map((key) => envName(key)))
  const names = Object.keys(finalEnv).filter((name) => name.startsWith('IMAGEGATE_'))
  t.ok(names.length >= 2, 'some are set')
  for (const name of names) t.ok(known.has(name), `${name} is a key imagegate reads`)
  const dir = t.testdir({ images: {} })
  const resolved = resolveOptions({ argv: ['--cache-dir', path.join(dir, 'images')], env: finalEnv, cwd: dir, homedir: dir })
  t.equal(resolved.kind, 'run', 'imagegate starts with them')
  if (resolved.kind !== 'run') return
  t.same(resolved.warnings, [], 'no warning')
  t.equal(resolved.options.host, '0.0.0.0', 'host taken')
  t.equal(resolved.options.stateDir, '/var/lib/imagegate', 'state folder taken')
  t.equal(resolved.options.port, DEFAULT_PORT, 'default port, the one exposed')
})

t.test('HEALTHCHECK runs the compiled health check, within its timeout', async t => {
  const health = only(inFinal, 'HEALTHCHECK')
  const cmd = /^((?:--\S+\s+)*)CMD\s+(.*)$/.exec(health.args)
  t.ok(cmd !== null, 'options, then CMD')
  t.same(execForm(cmd?.[2] ?? ''), ['node', 'dist/healthcheck.js'], 'node runs it (slim images have no curl), relative to WORKDIR /app')
  const build = JSON.parse(read('tsconfig.build.json')) as { compilerOptions: { rootDir: string, outDir: string } }
  const source = path.join(build.compilerOptions.rootDir, path.relative(build.compilerOptions.outDir, 'dist/healthcheck.js')).replace(/\.js$/, '.ts')
  t.equal(source, 'src/healthcheck.ts', 'compiled from src/healthcheck.ts')
  t.ok(existsSync(path.join(ROOT, source)), 'which exists (test/healthcheck.test.ts runs it against a real server)')
  const timeout = /--timeout=(\d+)s/.exec(cmd?.[1] ?? '')
  t.ok(Number(timeout?.[1]) * 1000 > DEFAULT_TIMEOUT_MS, `--timeout=${timeout?.[1] ?? '?'}s is longer than the check's own ${DEFAULT_TIMEOUT_MS} ms`)
  t.notOk(health.args.includes(String(DEFAULT_PORT)), 'no port written in: the check finds the one the server listens on')
})

t.test('.dockerignore keeps the build context small and free of secrets', async t => {
  const ignored = new Set(read('.dockerignore').split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#')))
  for (const entry of ['node_modules', '.git', 'test', 'dist', '.tap', 'docs', 'bench', '.env', 'config.yaml']) {
    t.ok(ignored.has(entry), `${entry} is left out`)
  }
  const sources = instructions
    .filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from='))
    .flatMap((i) => i.args.split(/\s+/).slice(0, -1))
  t.same([...new Set(sources)].sort(), ['package-lock.json', 'package.json', 'src', 'tsconfig.build.json', 'tsconfig.json'], 'what the build copies from the context')
  for (const source of sources) {
    t.ok(existsSync(path.join(ROOT, source)), `${source} exists`)
    t.notOk(ignored.has(source) || ignored.has(source.split('/')[0] as string), `${source} is not ignored`)
  }
})
